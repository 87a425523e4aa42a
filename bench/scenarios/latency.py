"""Latency, with a 2-worker cluster: event → transition committed; timer lag (fired minus
due); REST ``POST /api/runs/`` → first transition committed. (Transition → dashboard websocket
message: the ``dashboard_push`` scenario.)"""

from __future__ import annotations

import time

from bench.harness import Cluster, WebServer, paced, repeat, reset_runs, summary, wait_until
from bench.scenarios.common import (
    RestClient,
    api_available,
    api_token,
    finished,
    service_start,
)

UNITS = {"p50_ms": "ms", "p99_ms": "ms", "max_ms": "ms"}


def run(suite) -> None:
    events = suite.pick(quick=40, full=1000)
    timers = suite.pick(quick=40, full=1000)
    starts = suite.pick(quick=40, full=1000)
    rate = 20.0
    scenario = suite.report.scenario(
        "latency", "Latency: event, timer, REST start, dashboard push",
        workers=2, reps=suite.reps, events=events, timers=timers, rest_starts=starts,
        rate_per_s=rate, broker=suite.broker,
        measured="Transition.at (committed, worker clock) minus the send/due/POST time")
    with Cluster(2, **suite.env):
        stats = repeat(suite.reps, lambda: _events(suite, events, rate))
        suite.report.add(scenario, "event → transition", stats, UNITS)
        stats = repeat(suite.reps, lambda: _timers(suite, timers, rate))
        suite.report.add(scenario, "timer lag (fired − due)", stats,
                         {**UNITS, "min_ms": "ms", "late_over_250ms": "runs"})
        _rest_start(suite, scenario, starts, rate)
    scenario.notes.append("transition → dashboard websocket: see the dashboard_push scenario")


def _ms(values: list[float]) -> dict[str, float]:
    s = summary([v * 1000 for v in values])
    return {"p50_ms": s["p50"], "p99_ms": s["p99"], "max_ms": s["max"], "min_ms": s["min"]}


def _events(suite, count: int, rate: float) -> dict[str, float]:
    """Park ``count`` runs on a subscription, then send their events at ``rate``."""
    from taskapp import models
    from taskapp.services import event_send

    reset_runs(suite.redis_url)
    far = time.time() + 86400
    ids = [service_start("parked", {"key": f"k{i}", "due": far}) for i in range(count)]
    assert wait_until(lambda: models.Run.objects.filter(status="waiting").count() >= count,
                      120), "runs did not park"
    sent = {}
    for i in paced(count, rate):
        sent[f"k{i}"] = time.time()
        event_send(name="go", correlation=f"k{i}")
    finished(ids, 120)
    rows = models.Transition.objects.filter(to_state="by_event").values_list(
        "run__input", "at")
    return _ms([at.timestamp() - sent[data["key"]] for data, at in rows])


def _timers(suite, count: int, rate: float) -> dict[str, float]:
    """``count`` waits due at ``rate`` per second, starting after every run parked."""
    from taskapp import models

    reset_runs(suite.redis_url)
    first_due = time.time() + 2 + count * 0.02
    dues = {service_start("timed", {"due": first_due + i / rate}): first_due + i / rate
            for i in range(count)}
    finished(dues, first_due - time.time() + count / rate + 120)
    rows = models.Transition.objects.filter(to_state="fired").values_list("run_id", "at")
    lags = [at.timestamp() - dues[str(run_id)] for run_id, at in rows]
    result = _ms(lags)
    result["late_over_250ms"] = sum(1 for lag in lags if lag > 0.25)
    return result


def _rest_start(suite, scenario, count: int, rate: float) -> None:
    case = "REST POST /api/runs/ → first transition"
    if why := api_available():
        suite.report.unavailable(scenario, case, "p99_ms", why)
        return
    with WebServer(**suite.env) as server:
        client = RestClient(server.url, api_token())
        stats = repeat(suite.reps, lambda: _starts(suite, client, count, rate))
    suite.report.add(scenario, case, stats, UNITS)


def _starts(suite, client: RestClient, count: int, rate: float) -> dict[str, float]:
    from taskapp import models

    reset_runs(suite.redis_url)
    posted = {}
    for _ in paced(count, rate):
        began = time.time()
        posted[client.start("timed", {"due": time.time() + 86400})] = began
    finished([], 0)
    wait_until(lambda: models.Transition.objects.filter(seq=1).count() >= count, 60)
    rows = models.Transition.objects.filter(seq=1).values_list("run_id", "at")
    return _ms([at.timestamp() - posted[str(run_id)] for run_id, at in rows])
