"""The admin: where operators browse definitions, runs and their history. Read-only.

Definitions are loaded with ``manage.py loadtasks``, never edited here, and runs change only
through the services: the two actions (cancel, redrive) call them, nothing else writes.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import YamlLexer

from engine.runs import RunStatus
from taskapp import models
from taskapp.services import ServiceError, run_cancel, run_redrive

STATUS_COLOURS = {
    RunStatus.PENDING: "#8a8a8a",
    RunStatus.RUNNING: "#1f6fb2",
    RunStatus.WAITING: "#b58900",
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.FAILED: "#c62828",
    RunStatus.TIMED_OUT: "#c62828",
    RunStatus.CANCELLED: "#6d4c41",
}

# difflib.HtmlDiff's table classes, with the colours of its own make_file() page.
DIFF_CSS = """
table.diff {font-family: monospace; border: 1px solid #ccc; border-collapse: collapse;}
table.diff td {padding: 0 .4em; vertical-align: top; white-space: pre-wrap;}
table.diff th {background: #eee;}
.diff_header {background-color: #e0e0e0; text-align: right;}
td.diff_header {text-align: right;}
.diff_next {background-color: #c0c0c0;}
.diff_add {background-color: #aaffaa;}
.diff_chg {background-color: #ffff77;}
.diff_sub {background-color: #ffaaaa;}
"""


def pretty_json(value: Any) -> SafeString:
    return format_html('<pre class="as-json">{}</pre>', json.dumps(
        value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def status_badge(status: str) -> SafeString:
    return format_html(
        '<span style="color:#fff;background:{};padding:1px 8px;border-radius:8px">{}</span>',
        STATUS_COLOURS.get(status, "#555"), status,
    )


def run_link(run_id: Any) -> SafeString:
    url = reverse("admin:taskapp_run_change", args=[run_id])
    return format_html('<a href="{}">{}</a>', url, str(run_id)[:8])


class ReadOnlyAdminMixin:
    """View-only for everyone: no add, change or delete (actions still run services)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --------------------------------------------------------------------------- definitions


@admin.register(models.TaskDefinition)
class TaskDefinitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "version", "description", "created_at", "run_count"]
    list_filter = ["name"]
    search_fields = ["name", "description"]
    fields = [
        "name", "version", "description", "source_path", "checksum", "created_at",
        "other_versions", "highlighted_source", "diff_with_previous",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_run_count=Count("runs"))

    @admin.display(description="runs", ordering="_run_count")
    def run_count(self, obj: models.TaskDefinition) -> SafeString:
        url = reverse("admin:taskapp_run_changelist")
        return format_html('<a href="{}?definition__id__exact={}">{}</a>',
                           url, obj.pk, obj._run_count)

    @admin.display(description="source")
    def highlighted_source(self, obj: models.TaskDefinition) -> SafeString:
        formatter = HtmlFormatter(linenos="table", cssclass="yaml-source")
        css = formatter.get_style_defs(".yaml-source")
        html = highlight(obj.source, YamlLexer(), formatter)
        # Pygments escapes the source itself; the CSS is its own constant output.
        return mark_safe(f"<style>{css}</style>{html}")  # noqa: S308

    @admin.display(description="versions")
    def other_versions(self, obj: models.TaskDefinition) -> SafeString:
        rows = models.TaskDefinition.objects.filter(name=obj.name).order_by("-version")
        return format_html_join(
            " · ", '<a href="{}">v{}</a>{}',
            ((reverse("admin:taskapp_taskdefinition_change", args=[row.pk]), row.version,
              " (this one)" if row.pk == obj.pk else "") for row in rows),
        )

    @admin.display(description="changes since the previous version")
    def diff_with_previous(self, obj: models.TaskDefinition) -> SafeString | str:
        previous = (models.TaskDefinition.objects.filter(name=obj.name, version__lt=obj.version)
                    .order_by("-version").first())
        if previous is None:
            return "– (the first version)"
        table = difflib.HtmlDiff(tabsize=2, wrapcolumn=80).make_table(
            previous.source.splitlines(), obj.source.splitlines(),
            fromdesc=f"v{previous.version}", todesc=f"v{obj.version}", context=True,
        )
        # HtmlDiff escapes both texts; the table markup is its own.
        return mark_safe(f"<style>{DIFF_CSS}</style>{table}")  # noqa: S308


# --------------------------------------------------------------------------- runs


class HistoryInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


class TransitionInline(HistoryInline):
    model = models.Transition
    fields = ["seq", "at", "from_state", "to_state", "trigger", "condition_kind",
              "transition_index", "time_in_state", "detail"]
    ordering = ["seq"]


class InstructionAttemptInline(HistoryInline):
    model = models.InstructionAttempt
    fields = ["started_at", "state", "entry", "instruction", "kind", "attempt", "ok",
              "duration", "error_class", "error"]


class PollRecordInline(HistoryInline):
    model = models.PollRecord
    fields = ["state", "entry", "transition_index", "target", "attempts", "first_at",
              "last_at", "outcome", "last_result", "last_error"]


@admin.register(models.Run)
class RunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["short_id", "task_name", "task_version", "colored_status", "state",
                    "state_entered_at", "created_at", "finished_at"]
    list_filter = ["status", "task_name", "state"]
    search_fields = ["=id", "task_name", "=idempotency_key"]
    date_hierarchy = "created_at"
    # Big tables: no COUNT(*) of the whole table on filtered pages, and no joins (the list
    # shows the run's own columns; links use run_id).
    show_full_result_count = False
    actions = ["cancel_runs", "redrive_runs"]
    inlines = [TransitionInline, InstructionAttemptInline, PollRecordInline]
    fieldsets = [
        (None, {"fields": ["id", "definition_link", "colored_status", "state",
                           "state_entered_at", "entry", "idempotency_key", "cancel_requested"]}),
        ("Data", {"fields": ["input_json", "data_json", "error_json", "metrics_json",
                             "cursor_json"]}),
        ("Times", {"fields": ["created_at", "start_at", "deadline_at", "finished_at",
                              "updated_at", "wake_at"]}),
        ("Ownership", {"classes": ["collapse"],
                       "fields": ["lease_owner", "lease_expires_at", "version", "signal"]}),
    ]
    readonly_fields = [f for _, opts in fieldsets for f in opts["fields"]]

    @admin.display(description="run", ordering="id")
    def short_id(self, obj: models.Run) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="status", ordering="status")
    def colored_status(self, obj: models.Run) -> SafeString:
        return status_badge(obj.status)

    @admin.display(description="definition")
    def definition_link(self, obj: models.Run) -> SafeString:
        url = reverse("admin:taskapp_taskdefinition_change", args=[obj.definition_id])
        return format_html('<a href="{}">{} v{}</a>', url, obj.task_name, obj.task_version)

    @admin.display(description="input")
    def input_json(self, obj: models.Run) -> SafeString:
        return pretty_json(obj.input)

    @admin.display(description="data")
    def data_json(self, obj: models.Run) -> SafeString:
        return pretty_json(obj.data)

    @admin.display(description="error")
    def error_json(self, obj: models.Run) -> SafeString:
        return pretty_json(obj.error)

    @admin.display(description="metrics")
    def metrics_json(self, obj: models.Run) -> SafeString:
        return pretty_json(obj.metrics)

    @admin.display(description="cursor")
    def cursor_json(self, obj: models.Run) -> SafeString:
        return pretty_json(obj.cursor)

    @admin.action(description="Cancel selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "cancel requested for", lambda pk: run_cancel(run_id=pk))

    @admin.action(description="Redrive selected runs")
    def redrive_runs(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "redriven:", lambda pk: run_redrive(run_id=pk))

    def _each(self, request: HttpRequest, queryset: QuerySet, done: str, call: Any) -> None:
        """Call the service for each run; one success message, one error message per run."""
        succeeded = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                call(pk)
                succeeded += 1
            except ServiceError as exc:
                messages.error(request, str(exc))
        if succeeded:
            messages.success(request, f"{done} {succeeded} run{'s' * (succeeded != 1)}")


# --------------------------------------------------------------------------- history


@admin.register(models.Transition)
class TransitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "run_link", "seq", "from_state", "to_state", "trigger",
                    "condition_kind", "time_in_state"]
    list_filter = ["trigger", "condition_kind", "run__task_name"]
    search_fields = ["=run__id", "from_state", "to_state"]
    date_hierarchy = "at"
    show_full_result_count = False
    ordering = ["-at"]

    @admin.display(description="run")
    def run_link(self, obj: models.Transition) -> SafeString:
        return run_link(obj.run_id)


@admin.register(models.Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "name", "correlation", "run_link", "key", "expires_at",
                    "consumed_by"]
    list_filter = ["name"]
    search_fields = ["name", "=correlation", "=key", "=run__id"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    ordering = ["-received_at"]
    fields = ["name", "correlation", "run_link", "key", "payload_json", "received_at",
              "expires_at", "consumed_by"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_consumed=Count("consumptions"))

    @admin.display(description="run")
    def run_link(self, obj: models.Event) -> SafeString | str:
        return run_link(obj.run_id) if obj.run_id else "–"

    @admin.display(description="taken by runs", ordering="_consumed")
    def consumed_by(self, obj: models.Event) -> int:
        return obj._consumed

    @admin.display(description="payload")
    def payload_json(self, obj: models.Event) -> SafeString:
        return pretty_json(obj.payload)
