"""Who may change runs: one rule, asked by the API's permission classes and by the
dashboard's action views alike.

Starting a run needs ``taskapp.add_run`` ("Can add run"); cancelling, redriving and sending
events need ``taskapp.change_run`` ("Can change run"). Both are Django model permissions,
granted in the admin like any other; superusers have both.
"""

from __future__ import annotations

from typing import Any

START_RUNS = "taskapp.add_run"
CONTROL_RUNS = "taskapp.change_run"


def can_start_runs(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(START_RUNS))


def can_control_runs(user: Any) -> bool:
    """Cancel, redrive and send events."""
    return bool(user and user.is_authenticated and user.has_perm(CONTROL_RUNS))
