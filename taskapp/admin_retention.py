"""The retention policy in the admin: one row, edited in place; saving it reschedules the
automatic purge. Registered from ``TaskappConfig.ready()`` so ``taskapp/admin.py`` stays
about definitions and runs."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from taskapp.models import RetentionPolicy
from taskapp.services import retention_policy_ensure, retention_policy_save


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    fieldsets = [
        ("Keep finished runs", {
            "fields": ["succeeded_days", "failed_days", "max_finished_runs_per_task"],
            "description": "A task's YAML `retention:` overrides these for that task. "
                           "Unfinished runs are never purged.",
        }),
        ("Automatic purge", {"fields": ["purge_interval_minutes", "batch_size"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not RetentionPolicy.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        policy = retention_policy_ensure()  # one row: its list is its form
        return HttpResponseRedirect(
            reverse("admin:taskapp_retentionpolicy_change", args=[policy.pk]))

    def save_model(self, request, obj, form, change) -> None:
        retention_policy_save(policy=obj)
