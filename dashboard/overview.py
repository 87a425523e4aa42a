"""The overview's charts and its list of runs that need attention, read for the landing
page and for its live panels (``/overview/panels/``, fetched again by dashboard.js).

"Needs attention": the newest runs that failed or timed out, and active runs that have sat
in their state far longer than runs of the same task usually do there — longer than
``SLOW_FACTOR`` times the mean time in that state over the last ``USUAL_WINDOW`` (and at
least ``SLOW_MARGIN`` more), judged only when ``MIN_SAMPLES`` runs left the state in that
window. A run waiting for a one-hour timer is not slow when such runs usually wait an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from dashboard import charts, selectors
from engine.runs import ACTIVE, RunStatus
from taskapp.models import Run

WINDOW = timedelta(hours=1)
USUAL_WINDOW = timedelta(hours=24)
SLOW_FACTOR = 4.0
SLOW_MARGIN = timedelta(seconds=30)
MIN_SAMPLES = 3
LIST_LIMIT = 20
# Active runs looked at for slowness, longest in state first; runs finished for the chart.
CANDIDATES = 500
DURATION_POINTS = 2000


@dataclass(frozen=True, slots=True)
class SlowRun:
    run: Run
    seconds: float
    usual: float
    samples: int


def panels(now: datetime | None = None) -> dict[str, Any]:
    now = (now or timezone.now()).astimezone(UTC)
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - WINDOW
    return {
        "transitions_chart": _transitions_chart(start, end),
        "durations_chart": _durations_chart(now - WINDOW, now),
        "failed_runs": selectors.runs_ended_badly(
            [RunStatus.FAILED, RunStatus.TIMED_OUT], LIST_LIMIT),
        "slow_runs": slow_runs(now),
        "slow_factor": SLOW_FACTOR,
    }


def _transitions_chart(start: datetime, end: datetime) -> str:
    per_minute = {_utc_minute(k): n for k, n in selectors.transitions_per_minute(start).items()}
    minutes = int(WINDOW.total_seconds() // 60)
    counts = [per_minute.get(start + timedelta(minutes=i), 0) for i in range(minutes)]
    return charts.per_minute(counts, end, "Transitions")


def _utc_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _durations_chart(start: datetime, end: datetime) -> str:
    points = [
        charts.Point(at=row["finished_at"], failed=row["status"] != RunStatus.SUCCEEDED,
                     seconds=(row["finished_at"] - (row["start_at"] or row["created_at"]))
                     .total_seconds())
        for row in selectors.runs_finished_since(start, DURATION_POINTS)]
    return charts.durations(points, start, end)


def slow_runs(now: datetime) -> list[SlowRun]:
    """Active runs in their state far longer than usual, longest first."""
    candidates = selectors.runs_in_state_since(
        [str(s) for s in ACTIVE], now - SLOW_MARGIN, CANDIDATES)
    usual = selectors.usual_time_in_state(
        now - USUAL_WINDOW, {(r.task_name, r.state) for r in candidates})
    slow = []
    for run in candidates:
        mean, samples = usual.get((run.task_name, run.state), (None, 0))
        seconds = (now - run.state_entered_at).total_seconds()
        if mean is not None and samples >= MIN_SAMPLES and \
                seconds > max(SLOW_FACTOR * mean, mean + SLOW_MARGIN.total_seconds()):
            slow.append(SlowRun(run, seconds, mean, samples))
    return slow[:LIST_LIMIT]
