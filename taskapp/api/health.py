"""``GET /api/health/``: is the database, the broker and a cluster alive, are its
workers moving (no step stuck far past its budget), and are its broker listeners connected?
How many lifecycle events wait, for which destination and why (never unhealthy for that)?
Open to anyone (a load balancer has no user); says what is wrong, never anything secret."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from taskapp import dispatch, selectors, watchdog
from taskapp.api import serializers as s
from taskapp.conf import conf
from taskapp.timer import HEARTBEAT_SECONDS


def _database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, f"{connection.vendor} answers"
    except Exception as exc:  # any failure means "down"; report it
        return False, f"{connection.vendor}: {type(exc).__name__}: {exc}"


def _broker() -> tuple[bool, str]:
    ok, info, depth = dispatch.broker_status()
    return ok, f"{info}; {depth} tasks queued" if ok else info


def _cluster() -> tuple[bool, str]:
    window = selectors.heartbeat_window(HEARTBEAT_SECONDS)
    try:
        beats = selectors.cluster_heartbeats(since=conf.clock.now() - window)
    except Exception as exc:  # the database is down: the cluster cannot be seen either
        return False, f"cannot read heartbeats: {type(exc).__name__}"
    if not beats:
        return False, (f"no cluster beat in the last {window.total_seconds():.0f}s: "
                       "start one with `manage.py qcluster`")
    ago = (conf.clock.now() - beats[0].beat_at) / timedelta(seconds=1)
    return True, f"{len(beats)} cluster process(es); last beat {ago:.1f}s ago"


def _listeners() -> tuple[bool, str]:
    """The clusters' broker listeners: all connected, or which are not and why. A source
    whose connection the cluster's environment does not define is said, not an outage."""
    window = selectors.heartbeat_window(HEARTBEAT_SECONDS)
    try:
        listeners = selectors.cluster_listeners(since=conf.clock.now() - window)
    except Exception as exc:  # the database is down: listeners cannot be seen either
        return False, f"cannot read listeners: {type(exc).__name__}"
    if not listeners:
        return True, "no broker source declared"
    idle = [state for _, state in listeners if state.get("configured") is False]
    down = [(owner, state) for owner, state in listeners
            if not state.get("connected") and state.get("configured") is not False]
    unset = (f"; {len(idle)} wait for their connection to be configured: "
             f"{idle[0]['source']}" if idle else "")
    if not down:
        connected = len(listeners) - len(idle)
        messages = sum(state.get("messages", 0) for _, state in listeners)
        return True, f"{connected} listener(s) connected; {messages} message(s) taken{unset}"
    owner, state = down[0]
    error = state.get("last_error") or "connecting"
    return False, (f"{len(down)} of {len(listeners)} listener(s) disconnected: "
                   f"{state['source']} on {owner}: {error}{unset}")


def _lifecycle() -> tuple[bool, str]:
    """Lifecycle events waiting per destination, and why. Always ok: a slow or down receiver
    never stops the service (its events wait in the outbox); this says so."""
    try:
        backlog = selectors.lifecycle_backlog()
    except Exception as exc:  # the database is down: said by the database check
        return True, f"cannot read the outbox: {type(exc).__name__}"
    if not backlog:
        return True, "no lifecycle event waiting"
    now = conf.clock.now()
    return True, "; ".join(_backlog_detail(b, now) for b in backlog)


def _backlog_detail(backlog: selectors.LifecycleBacklog, now) -> str:
    lag = (now - backlog.oldest).total_seconds()
    detail = f"{backlog.destination}: {backlog.pending} waiting, oldest {lag:.1f}s"
    if backlog.last_error:
        detail += f", failing ({backlog.attempts} attempt(s)): {backlog.last_error}"
    return detail


# Recycles are reported this long after they happen (they are a warning, not an outage).
RECYCLE_WINDOW = timedelta(minutes=10)


def _workers() -> tuple[bool, str]:
    """Steps stuck far past their budget (not ok), and recent recycles (ok, but said)."""
    now, stuck_after = conf.clock.now(), float(conf.STUCK_STEP_SECONDS)
    try:
        stuck = selectors.worker_incidents(
            kind="stuck", since=now - selectors.heartbeat_window(watchdog.LOOK_SECONDS))
        held, oldest = (selectors.runs_held_since(before=now - timedelta(seconds=stuck_after))
                        if stuck_after > 0 else (0, []))
        recycled = selectors.worker_incidents(kind="recycled", since=now - RECYCLE_WINDOW)
    except Exception as exc:  # the database is down: workers cannot be seen either
        return False, f"cannot read worker incidents: {type(exc).__name__}"
    parts = [_stuck_detail(stuck, now)] if stuck else []
    if held:
        parts.append(_held_detail(held, oldest, now, stuck_after))
    if recycled:
        peak = max(r.rss_mib or 0.0 for r in recycled)
        parts.append(f"{len(recycled)} worker(s) recycled for memory in the last "
                     f"{RECYCLE_WINDOW.total_seconds() / 60:.0f} min (peak {peak:.0f} MiB, "
                     "over Q_MAX_RSS_MB)")
    return not stuck and not held, "; ".join(parts) or "no stuck step, no recycle"


def _stuck_detail(stuck: list, now) -> str:
    first = stuck[0]
    return (f"{len(stuck)} worker(s) stuck in a step: run {first.run_id} on {first.owner} "
            f"for {(now - first.since).total_seconds():.0f}s")


def _held_detail(held: int, oldest: list, now, stuck_after: float) -> str:
    first = oldest[0]
    return (f"{held} run(s) held past STUCK_STEP_SECONDS={stuck_after:g}s: run {first.id} "
            f"in state '{first.state}' by {first.lease_owner} for "
            f"{(now - first.claimed_at).total_seconds():.0f}s")




CHECKS = {"database": _database, "broker": _broker, "cluster": _cluster, "workers": _workers,
          "listeners": _listeners, "lifecycle": _lifecycle}


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(summary="Health of the database, the broker and the cluster",
                   auth=[], responses={200: s.HealthSerializer,
                                       503: OpenApiResponse(s.HealthSerializer)})
    def get(self, request):
        checks = {}
        for name, check in CHECKS.items():
            ok, detail = check()
            checks[name] = {"ok": ok, "detail": detail}
        healthy = all(c["ok"] for c in checks.values())
        body = {"status": "ok" if healthy else "unavailable", "checks": checks}
        return Response(body, status=200 if healthy else 503)
