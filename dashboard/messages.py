"""The JSON messages the dashboard's websocket sends, built from either source of news:
the ``run_changed`` signal's keyword arguments or a row read by ``dashboard.selectors``.

    {"type": "run", "id", "task", "version", "status", "state", "state_entered_at",
     "created_at", "updated_at", "finished_at", "transitions": [{"seq", "from_state", "to_state",
     "trigger", "condition_kind", "at", "time_in_state"}, ...]}
    {"type": "counts", "status": {status: n}, "states": {task: [{"status", "state", "n"}]}}

Times are ISO 8601 strings (UTC), so the messages also travel through channels-redis
(msgpack) unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def transition(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"seq": row["seq"], "from_state": row["from_state"], "to_state": row["to_state"],
            "trigger": row["trigger"], "condition_kind": row["condition_kind"],
            "at": iso(row["at"]), "time_in_state": row["time_in_state"]}


def run(row: Mapping[str, Any], transitions: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A ``run`` message from a selector row (``id``, ``task_name``…).

    ``state_entered_at`` is the row's when it has one; the signal does not carry it, so there
    it is the last transition's time (the run entered its state then), or null when the
    change carried no transition (the state did not change: the page keeps what it had).
    """
    moves = [transition(t) for t in transitions]
    entered = row.get("state_entered_at") or (moves[-1]["at"] if moves else None)
    return {
        "type": "run", "id": str(row["id"]), "task": row["task_name"],
        "version": row["task_version"], "status": row["status"], "state": row["state"],
        "state_entered_at": entered if isinstance(entered, str | None) else iso(entered),
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
        "finished_at": iso(row["finished_at"]), "transitions": moves,
    }


def run_from_signal(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A ``run`` message from ``run_changed``'s keyword arguments."""
    return run({**payload, "id": payload["run_id"]}, payload.get("transitions", ()))


def counts(status: Iterable[tuple[str, int]], states: Mapping[str, list]) -> dict[str, Any]:
    return {"type": "counts", "status": dict(status), "states": dict(states)}
