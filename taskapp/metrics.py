"""Prometheus metrics, computed from the database when scraped.

Everything is read from our own tables at scrape time by one custom collector, rather than
kept in process memory: runs are advanced by many django-q2 worker processes (forked, and
recycled), whose in-memory counters a scrape of the web process would never see, and
prometheus-client's multiprocess mode needs a shared directory and cleanup we would rather
not impose. The rows are the truth anyway, and the queries use the indexes the listing uses.

Counters and histograms cover the rows still kept: the retention purge deletes old runs
with their history, which Prometheus sees as a counter reset (``rate()`` handles that).
Histograms cost one aggregate query each (one conditional count per bucket).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, Min, Q, QuerySet, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from engine.runs import ACTIVE
from taskapp import dispatch, models, selectors
from taskapp.conf import conf
from taskapp.timer import HEARTBEAT_SECONDS

# Seconds. Instructions are HTTP calls and the like (ms to a minute); time in a state runs
# from milliseconds (pass-through states) to days (waiting for a person).
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STATE_BUCKETS = (0.01, 0.1, 1, 10, 60, 300, 3600, 6 * 3600, 86400, 7 * 86400)

_ACTIVE = [str(s) for s in ACTIVE]


class DatabaseCollector:
    """Yields every metric from the database (and the broker's queue length)."""

    def collect(self) -> Iterator[Metric]:
        yield self._runs()
        yield self._active_runs()
        yield self._transitions()
        yield from self._attempts()
        yield _histogram(
            "async_states_state_duration_seconds",
            "Time runs spent in a state before leaving it (Transition.time_in_state).",
            models.Transition.objects.all(), "time_in_state", STATE_BUCKETS,
        )
        yield self._timer_lag()
        yield from self._queue()
        yield from self._lifecycle()
        yield from self._listeners()

    def _runs(self) -> Metric:
        family = GaugeMetricFamily("async_states_runs", "Runs by task and status.",
                                   labels=["task", "status"])
        rows = models.Run.objects.values("task_name", "status").annotate(n=Count("id"))
        for row in rows.order_by():
            family.add_metric([row["task_name"], row["status"]], row["n"])
        return family

    def _active_runs(self) -> Metric:
        family = GaugeMetricFamily(
            "async_states_active_runs",
            "Unfinished runs (pending, running, waiting) by task, state and status.",
            labels=["task", "state", "status"])
        rows = (models.Run.objects.filter(status__in=_ACTIVE)
                .values("task_name", "state", "status").annotate(n=Count("id")))
        for row in rows.order_by():
            family.add_metric([row["task_name"], row["state"], row["status"]], row["n"])
        return family

    def _transitions(self) -> Metric:
        family = CounterMetricFamily("async_states_transitions", "Transitions by trigger.",
                                     labels=["trigger"])
        rows = models.Transition.objects.values("trigger").annotate(n=Count("id"))
        for row in rows.order_by():
            family.add_metric([row["trigger"]], row["n"])
        return family

    def _attempts(self) -> Iterator[Metric]:
        attempts = CounterMetricFamily(
            "async_states_instruction_attempts", "Instruction attempts by kind and result.",
            labels=["kind", "result"])
        errors = CounterMetricFamily(
            "async_states_instruction_errors", "Failed instruction attempts by kind and class "
            "(connection, timeout, 5xx, 429, 4xx, ...).", labels=["kind", "error_class"])
        rows = models.InstructionAttempt.objects.values("kind", "ok", "error_class")
        for row in rows.annotate(n=Count("id")).order_by():
            attempts.add_metric([row["kind"], "ok" if row["ok"] else "error"], row["n"])
            if not row["ok"]:
                errors.add_metric([row["kind"], row["error_class"] or "error"], row["n"])
        yield attempts
        yield errors
        yield _histogram(
            "async_states_instruction_duration_seconds", "Instruction attempt durations.",
            models.InstructionAttempt.objects.all(), "duration", ATTEMPT_BUCKETS, by="kind",
        )

    def _timer_lag(self) -> Metric:
        """How late the most overdue wake-up is: 0 when the timer keeps up."""
        now = conf.clock.now()
        free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
        oldest = (models.Run.objects.filter(free, status__in=_ACTIVE, wake_at__lte=now)
                  .aggregate(at=Min("wake_at"))["at"])
        lag = (now - oldest) / timedelta(seconds=1) if oldest else 0.0
        return GaugeMetricFamily("async_states_timer_lag_seconds",
                                 "How overdue the oldest due wake-up is.", value=lag)

    def _queue(self) -> Iterator[Metric]:
        ok, _info, depth = dispatch.broker_status()
        yield GaugeMetricFamily("async_states_queue_depth",
                                "Tasks waiting in the django-q2 broker (-1: broker down).",
                                value=depth if ok and depth is not None else -1)
        window = selectors.heartbeat_window(HEARTBEAT_SECONDS)
        alive = models.ClusterHeartbeat.objects.filter(beat_at__gte=conf.clock.now() - window)
        yield GaugeMetricFamily("async_states_cluster_processes",
                                "Cluster processes whose timer beat recently.",
                                value=alive.count())

    def _lifecycle(self) -> Iterator[Metric]:
        """The outbox per destination (named by its connection, never its URL)."""
        labels = ["destination"]
        pending = GaugeMetricFamily("async_states_lifecycle_pending",
                                    "Lifecycle events waiting to be published.", labels=labels)
        lag = GaugeMetricFamily("async_states_lifecycle_lag_seconds",
                                "Age of the oldest lifecycle event waiting.", labels=labels)
        failing = GaugeMetricFamily(
            "async_states_lifecycle_failing",
            "1 when the destination's last publish failed (its error: GET /api/health/).",
            labels=labels)
        now = conf.clock.now()
        for backlog in selectors.lifecycle_backlog():
            pending.add_metric([backlog.destination], backlog.pending)
            lag.add_metric([backlog.destination], (now - backlog.oldest).total_seconds())
            failing.add_metric([backlog.destination], 1 if backlog.attempts else 0)
        yield from (pending, lag, failing)


    def _listeners(self) -> Iterator[Metric]:
        """The broker listeners of the live clusters (their heartbeat rows)."""
        labels = ["source", "cluster"]
        connected = GaugeMetricFamily("async_states_listener_connected",
                                      "1 while a broker listener is connected.", labels=labels)
        last = GaugeMetricFamily("async_states_listener_last_message_timestamp_seconds",
                                 "When a listener last took a message (0: never).",
                                 labels=labels)
        counters = {name: CounterMetricFamily(f"async_states_listener_{name}", doc,
                                              labels=labels)
                    for name, doc in LISTENER_COUNTERS.items()}
        window = selectors.heartbeat_window(HEARTBEAT_SECONDS)
        for owner, state in selectors.cluster_listeners(since=conf.clock.now() - window):
            key = [state["source"], owner]
            connected.add_metric(key, 1.0 if state.get("connected") else 0.0)
            last.add_metric(key, state.get("last_message_at") or 0.0)
            for name, family in counters.items():
                family.add_metric(key, state.get(name, 0))
        yield connected
        yield last
        yield from counters.values()


LISTENER_COUNTERS = {
    "messages": "Messages a broker listener took.",
    "events": "New events stored from broker messages.",
    "duplicates": "Broker messages whose event was stored already (redelivered), dropped.",
    "poison": "Broker messages that could not become an event, acknowledged and dropped.",
    "errors": "Listener errors (connection failures and poison messages).",
    "reconnects": "Times a listener reconnected after a failure.",
}


def _histogram(name: str, doc: str, rows: QuerySet, column: str,
               buckets: tuple[float, ...], by: str | None = None) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=[by] if by else [])
    counts = {f"le{i}": Count("id", filter=Q(**{f"{column}__lte": b}))
              for i, b in enumerate(buckets)}
    aggregates = {**counts, "total": Count("id"), "sum": Sum(column)}
    grouped = rows.values(by).annotate(**aggregates).order_by() if by else [
        rows.aggregate(**aggregates)]
    for row in grouped:
        if by is None and not row["total"]:
            continue
        cumulative = [(_le(b), row[f"le{i}"]) for i, b in enumerate(buckets)]
        family.add_metric([row[by]] if by else [], cumulative + [("+Inf", row["total"])],
                          row["sum"] or 0.0)
    return family


def _le(bound: float) -> str:
    return str(float(bound))


def render() -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return generate_latest(registry)
