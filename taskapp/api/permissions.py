"""Who may do what.

Reading needs a signed-in user (the default, ``IsAuthenticated``). Changing runs needs a
Django model permission that read-only users lack (``taskapp.permissions``, the rule the
dashboard's actions ask too), so it is granted in the admin like any other: starting a run
needs ``taskapp.add_run`` ("Can add run"); cancelling, redriving and sending events need
``taskapp.change_run`` ("Can change run"); dry runs (``/api/tasks/simulate/``) need
``taskapp.simulate_task`` ("Can simulate task"). Superusers have them all.

Events for one task may instead carry that task's webhook secret (``webhook.py``), for third
parties that cannot hold a user token.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from taskapp import permissions
from taskapp.api import webhook


class _ModelPermission(BasePermission):
    perm = ""
    message = "you are signed in but lack the permission to do this"

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(self.perm))


class CanStartRuns(_ModelPermission):
    perm = permissions.START_RUNS
    message = "starting runs needs the 'taskapp.add_run' permission (Can add run)"


class CanControlRuns(_ModelPermission):
    perm = permissions.CONTROL_RUNS
    message = ("cancelling, redriving and sending events need the 'taskapp.change_run' "
               "permission (Can change run)")


class CanSimulateTasks(_ModelPermission):
    """Dry runs execute user-supplied definitions and templates (within their budgets):
    a permission of its own, granted like the others."""

    perm = permissions.SIMULATE_TASKS
    message = "simulating tasks needs the 'taskapp.simulate_task' permission (Can simulate task)"


class CanControlRunsOrWebhookSecret(CanControlRuns):
    """A user allowed to control runs, or a request carrying the task's webhook secret
    (checked in constant time; a wrong secret is refused with 401, never passed on)."""

    def has_permission(self, request, view) -> bool:
        if webhook.presented(request):
            return webhook.check(request, task=view.kwargs["name"])
        return super().has_permission(request, view)
