"""What the campaign checks once the load has drained, read from the engine's own tables
and the far end's record. Every count here must be zero, but the informational ones
(``calls_repeated``: instructions are at-least-once across a crash, and a repeat carries the
same Idempotency-Key)."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from typing import Any

from bench.faults.load import HTTP_CALLS, KINDS, LoadRecord, expected_path, task_of
from bench.harness import percentile, wait_until

TASKS = [task_of(kind) for kind in KINDS]


def drain(record: LoadRecord, timeout: float) -> float:
    """Wait (bounded) until every accepted run has finished; returns the seconds waited."""
    from django.db import Error, close_old_connections

    from taskapp import models

    keys = list(record.accepted)
    began = time.monotonic()

    def done() -> bool:
        try:
            return models.Run.objects.filter(task_name__in=TASKS, idempotency_key__in=keys,
                                             finished_at__isnull=False).count() >= len(keys)
        except Error:
            close_old_connections()
            return False
    wait_until(done, timeout, every=1.0)
    return round(time.monotonic() - began, 1)


def check_runs(record: LoadRecord) -> dict[str, Any]:
    from taskapp import models

    runs = list(models.Run.objects.filter(task_name__in=TASKS).values(
        "id", "task_name", "idempotency_key", "status", "state", "data", "lease_owner", "error",
        "crashes", "crash_error"))
    by_key: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        by_key[run["idempotency_key"]].append(run)
    accepted = record.accepted
    lost = sorted(k for k in accepted if not by_key.get(k))
    duplicated = sorted(k for k, rs in by_key.items() if len(rs) > 1 or k is None)
    duplicated += sorted(k for k, a in accepted.items()
                         if len(a.ids) > 1 or (by_key.get(k) and
                                               str(by_key[k][0]["id"]) not in a.ids))
    unknown = sorted(str(k) for k in by_key if k not in record.attempted)
    ours = [rs[0] for k, rs in by_key.items() if k in accepted]
    stuck = [_brief(r) for r in ours if r["status"] in {"pending", "running", "waiting"}]
    wrong = [_brief(r) for r in ours
             if r["status"] not in {"pending", "running", "waiting"}
             and (r["status"], r["state"]) != ("succeeded", "done")]
    return {"runs": len(runs), "lost": lost, "duplicated": duplicated, "unknown": unknown,
            "stuck": stuck, "wrong_end": wrong,
            "leases_held": [_brief(r) for r in runs if r["lease_owner"]],
            **check_histories(ours, record)}


def _brief(run: dict) -> str:
    """One line a reader can act on: which run, where it ended and, for a failed one, why."""
    line = f"{run['id']} {run['task_name']} {run['status']} in {run['state']!r}"
    if run.get("error"):
        line += f" error={json.dumps(run['error'], default=str)[:300]}"
    if run.get("crashes") or run.get("crash_error"):
        line += f" crashes={run['crashes']} crash_error={run['crash_error']!r}"
    return line


def check_histories(runs: list[dict], record: LoadRecord) -> dict[str, Any]:
    """Each run's Transition rows: seq 1..n with no gap or repeat, along its kind's path
    (a transition applied twice shows as a repeated step), and ``data.n`` bumped once per
    state entered."""
    from taskapp import models

    kind_of = {str(r["id"]): record.accepted[r["idempotency_key"]].kind for r in runs}
    rows = defaultdict(list)
    for run_id, seq, frm, to in models.Transition.objects.filter(
            run_id__in=[r["id"] for r in runs]).order_by("run_id", "seq").values_list(
            "run_id", "seq", "from_state", "to_state"):
        rows[str(run_id)].append((seq, frm, to))
    bad_seq, twice, off_path, bad_data = [], [], [], []
    for run in runs:
        run_id = str(run["id"])
        kind, path = kind_of[run_id], rows[run_id]
        expected = expected_path(kind)
        if [seq for seq, _, _ in path] != list(range(1, len(path) + 1)):
            bad_seq.append(run_id)
        steps = [(frm, to) for _, frm, to in path]
        if any(n > 1 for n in Counter(steps).values()):
            twice.append(run_id)
        elif run["status"] == "succeeded" and steps != expected:
            off_path.append(f"{run_id}: {steps}")
        if run["status"] == "succeeded" and run["data"].get("n") != len(expected) - 1:
            bad_data.append(f"{run_id}: n={run['data'].get('n')}")
    return {"transitions_checked": sum(len(p) for p in rows.values()),
            "seq_broken": bad_seq, "applied_twice": twice, "off_path": off_path,
            "data_wrong": bad_data}


def check_calls(requests: list[dict], record: LoadRecord) -> dict[str, Any]:
    """The far end's view of the http runs: each succeeded one called once per http
    instruction at least (distinct Idempotency-Keys), never with more distinct keys than
    instructions (a state entered twice); repeats of one key are allowed and counted."""
    from taskapp import models

    keys_by_run: dict[str, Counter] = defaultdict(Counter)
    for request in requests:
        run = json.loads(request["body"])["run"]
        keys_by_run[run][request["headers"].get("Idempotency-Key", "")] += 1
    succeeded = [str(pk) for pk in models.Run.objects.filter(
        task_name=task_of("http"), status="succeeded",
        idempotency_key__in=list(record.accepted)).values_list("id", flat=True)]
    missing = [r for r in succeeded if len(keys_by_run.get(r, ())) < HTTP_CALLS]
    extra = [r for r in succeeded if len(keys_by_run.get(r, ())) > HTTP_CALLS]
    keyless = sum(n for keys in keys_by_run.values() for k, n in keys.items() if not k)
    repeated = sum(n - 1 for keys in keys_by_run.values() for n in keys.values())
    return {"calls": len(requests), "http_runs_checked": len(succeeded),
            "calls_missing": missing, "calls_extra_keys": extra,
            "calls_without_key": keyless, "calls_repeated": repeated}


def takeovers(faults: list[dict]) -> dict[str, Any]:
    """Seconds from each kill to the next transition of each run the killed processes held."""
    from taskapp import models

    result: dict[str, Any] = {}
    for kind in ("cluster_kill", "cluster_term", "worker_kill"):
        times, never = [], []
        for fault in (f for f in faults if f["kind"] == kind):
            for run_id in fault.get("held", []):
                after = models.Transition.objects.filter(
                    run_id=run_id, at__gt=_aware(fault["at"])).order_by("seq").first()
                if after is None:
                    if not models.Run.objects.filter(pk=run_id,
                                                     finished_at__isnull=False).exists():
                        never.append(run_id)  # (finished ones ended just before the kill)
                else:
                    times.append(after.at.timestamp() - fault["at"])
        result[kind] = {"held_runs": len(times) + len(never), "never_moved": never,
                        **({"p50": percentile(times, 50), "p99": percentile(times, 99),
                            "max": max(times)} if times else {})}
    return result


def _aware(epoch: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC)
