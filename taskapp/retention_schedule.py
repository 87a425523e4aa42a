"""After the first ``migrate``: the default policy, and its automatic purge scheduled, so the
purge runs even if nobody ever opens the policy in the admin. Later, the admin reschedules
it (``admin_retention``); an interval of 0 set there is not undone here."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS


def ensure_purge_schedule(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    from taskapp.services.retention import retention_policy_ensure

    if using == DEFAULT_DB_ALIAS:
        retention_policy_ensure()
