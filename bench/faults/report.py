"""The campaign's summary: a table for people, the whole result as JSON, and the verdict
(the counts that must be zero)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from bench.faults.fleet import FAULTS, KILLS

# (label, where in the result) of every count that must be zero.
MUST_BE_ZERO = (
    ("runs lost (accepted, never created)", ("runs", "lost")),
    ("runs duplicated (one key, several runs)", ("runs", "duplicated")),
    ("runs nobody asked for", ("runs", "unknown")),
    ("runs stuck in an active state", ("runs", "stuck")),
    ("runs ended elsewhere than succeeded/done", ("runs", "wrong_end")),
    ("leases still held", ("runs", "leases_held")),
    ("transitions applied twice", ("runs", "applied_twice")),
    ("histories with broken seq", ("runs", "seq_broken")),
    ("histories off the task's path", ("runs", "off_path")),
    ("data.n out of step with the history", ("runs", "data_wrong")),
    ("http runs missing a call", ("calls", "calls_missing")),
    ("http runs with extra call keys", ("calls", "calls_extra_keys")),
    ("calls without an Idempotency-Key", ("calls", "calls_without_key")),
    ("starts never accepted (client gave up)", ("load", "gave_up")),
    ("well-formed starts refused (4xx)", ("load", "refused")),
    ("events never accepted", ("load", "events_gave_up")),
    ("500 answers to the load's requests", ("load", "server_errors", "500")),
    ("processes left after stop", ("processes_left",)),
    ("findings (hostile input answers, hangs, exits)", ("findings",)),
)


def _get(result: dict, path: tuple[str, ...]) -> Any:
    for part in path:
        result = result.get(part, 0) if isinstance(result, dict) else 0
    return result


def _count(value: Any) -> int:
    return value if isinstance(value, int) else len(value)


def failures(result: dict) -> dict[str, int]:
    """Label -> count for every must-be-zero count that is not zero."""
    counts = {label: _count(_get(result, path)) for label, path in MUST_BE_ZERO}
    return {label: n for label, n in counts.items() if n}


def _offender_lines(result: dict, most: int = 10) -> list[str]:
    """The first few items behind each non-zero list count, so a failure in CI says which
    runs (and why) without a replay."""
    lines: list[str] = []
    for label, path in MUST_BE_ZERO:
        value = _get(result, path)
        if isinstance(value, list) and value:
            lines += ["", f"  {label}:"] + [f"    {item}" for item in value[:most]]
    return lines


def table(result: dict) -> str:
    faults = Counter(f["kind"] for f in result["faults"])
    runs, load, calls = result["runs"], result["load"], result["calls"]
    lines = [f"fault campaign at {result.get('git', '?')}, seed {result['seed']} "
             f"({result['seconds']:.0f} s; replay with --seed {result['seed']})", ""]
    lines += [f"  {kind:<18} {faults.get(kind, 0):>5}" for kind in FAULTS]
    lines.append(f"  {'kill rounds':<18} {sum(faults[k] for k in KILLS):>5}")
    lines += ["", f"  runs started {load['attempted']}, accepted {load['accepted']}, "
              f"checked {runs['runs']}, transitions checked {runs['transitions_checked']}",
              f"  client retries {load['retries']}, 5xx answers to the load "
              f"{sum(load['server_errors'].values())} {load['server_errors'] or ''}",
              *_after_fault(load.get("samples_500", []), result["faults"]),
              f"  events sent {load['events_sent']}; far-end calls {calls['calls']} "
              f"({calls['calls_repeated']} repeats of a key: at-least-once)",
              f"  drained in {result['drain_seconds']} s", ""]
    lines += _takeover_lines(result["takeover"])
    lines += _hostile_summary(result)
    lines += ["", "  must be zero:"]
    lines += [f"    {label:<48} {_count(_get(result, path)):>5}" for label, path in MUST_BE_ZERO]
    lines += _offender_lines(result)
    lines += _hostile_lines(result["hostile"])
    lines += _finding_lines(result["findings"])
    bad = failures(result)
    lines += ["", "PASS: nothing lost, duplicated, stuck or leaked; no findings" if not bad
              else f"FAIL: {', '.join(f'{k}: {n}' for k, n in bad.items())}"]
    return "\n".join(lines)


def _after_fault(samples: list[dict], faults: list[dict]) -> list[str]:
    """Which fault each 500 to the load followed (the latest one before it) and how soon."""
    if not samples:
        return []
    after: Counter[str] = Counter()
    latest: dict[str, float] = {}
    for sample in samples:
        before = [f for f in faults if f["at"] <= sample["at"]]
        kind = max(before, key=lambda f: f["at"])["kind"] if before else "no fault"
        after[kind] += 1
        if before:
            gap = sample["at"] - max(f["at"] for f in before)
            latest[kind] = max(latest.get(kind, 0.0), gap)
    return ["    500s by the fault before them: " + ", ".join(
        f"{kind} {n} (within {latest.get(kind, 0):.1f} s)" for kind, n in after.most_common())]


def _takeover_lines(takeover: dict) -> list[str]:
    lines = ["  takeover (kill -> next transition of each run the killed processes held):"]
    for kind, t in takeover.items():
        figures = (f"p50 {t['p50']:.1f} s, p99 {t['p99']:.1f} s, max {t['max']:.1f} s"
                   if "p50" in t else "no held runs")
        lines.append(f"    {kind:<14} {t['held_runs']:>4} runs  {figures}"
                     + (f"; never moved: {len(t['never_moved'])}" if t["never_moved"] else ""))
    return lines


def _hostile_summary(result: dict) -> list[str]:
    hostile = result["hostile"]
    kinds = Counter(f["kind"] for f in result["findings"])
    fivexx = sum(1 for h in hostile if (h["status"] or 0) >= 500)
    silent = sum(1 for h in hostile if h["status"] is None)
    shape = sum(1 for h in hostile if h["problem"] and (h["status"] or 500) < 500)
    return ["", f"  hostile inputs {len(hostile)}: 5xx {fivexx}, no answer {silent}, "
            f"4xx outside the JSON shape {shape}",
            f"  hang detections {kinds.get('hang', 0)} (daphne not answering /api/health/, "
            f"a cluster not stopping on SIGTERM); processes that exited by themselves "
            f"{kinds.get('exit', 0)}"]


def _hostile_lines(hostile: list[dict]) -> list[str]:
    lines = ["", f"  hostile inputs: {len(hostile)} sent"]
    seen: dict[str, dict] = {}
    for item in hostile:
        seen.setdefault(item["name"], item)
        if item["problem"]:
            seen[item["name"]] = item
    for name, item in seen.items():
        mark = "FINDING" if item["problem"] else "ok"
        lines.append(f"    {mark:<8} {item['status'] or '-':>4} {item['seconds']:6.2f}s  {name}")
    return lines


def _finding_lines(findings: list[dict]) -> list[str]:
    if not findings:
        return []
    lines = ["", f"  findings ({len(findings)}):"]
    lines += [f"    {f['kind']:<8} {f['where']}: {f['detail'][:160]}" for f in findings]
    return lines


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str))
