"""Who may change runs: one rule, asked by the API's permission classes and by the
dashboard's action views alike.

Starting a run needs ``taskapp.add_run`` ("Can add run"); cancelling, redriving and sending
events need ``taskapp.change_run`` ("Can change run"); dry runs need
``taskapp.simulate_task`` ("Can simulate task"), since they run definitions and templates a
user sends. All are Django model permissions, granted in the admin like any other;
superusers have them all.
"""

from __future__ import annotations

from typing import Any

START_RUNS = "taskapp.add_run"
CONTROL_RUNS = "taskapp.change_run"
SIMULATE_TASKS = "taskapp.simulate_task"


def can_start_runs(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(START_RUNS))


def can_control_runs(user: Any) -> bool:
    """Cancel, redrive and send events."""
    return bool(user and user.is_authenticated and user.has_perm(CONTROL_RUNS))


def can_simulate_tasks(user: Any) -> bool:
    """Dry runs, over the API or from the task page."""
    return bool(user and user.is_authenticated and user.has_perm(SIMULATE_TASKS))
