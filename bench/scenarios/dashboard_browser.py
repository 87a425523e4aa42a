"""Dashboard in the browser: a transition committed by a cluster worker → the state diagram
on an open run page showing the run's new current state, in Chromium (Playwright), in both
push modes (``dashboard/push.py``): ``layer`` (channels-redis, with the Redis broker) and
``poll`` (daphne with the in-memory layer, the embedded default's path).

One ``relay`` run hops between two states on each ``go`` event sent to it (one a second).
The page records, in a ``MutationObserver`` on the diagram, when a node became the
current one and how many transitions its timeline then held; latency = that time minus the
transition's ``at`` (stamped in the worker just before the commit; one machine, one clock).
On top of ``dashboard_push`` (commit → websocket message) this counts the page's own work:
parsing the message, appending the row, redrawing the path.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Cluster, WebServer, repeat, reset_runs, summary, wait_until
from bench.scenarios.common import service_start
from bench.scenarios.dashboard_push import _modes, _session_cookie

UNITS = {"p50_ms": "ms", "p99_ms": "ms", "max_ms": "ms", "missed": "transitions"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# Installed in the page before its scripts run: every time a diagram node gains the
# ``current`` class, note when, which state, and how many transitions the timeline shows.
OBSERVE = """
window.benchSeen = [];
new MutationObserver(function (changes) {
  var now = Date.now();
  changes.forEach(function (change) {
    var node = change.target;
    if (node.matches && node.matches("g.node.current") &&
        !(change.oldValue || "").split(" ").includes("current")) {
      var rows = document.querySelectorAll("#transitions tbody tr").length;
      window.benchSeen.push({state: node.dataset.state, at: now, seq: rows});
    }
  });
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["class"],
                      attributeOldValue: true});
"""


def run(suite) -> None:
    # One hop a second: slower than poll mode's 0.5 s look, so no look sees two hops (a run
    # back in the state it left shows no change on the diagram, and would count as missed).
    count = suite.pick(quick=12, full=40)
    rate = 1.0
    scenario = suite.report.scenario(
        "dashboard_browser", "Dashboard in the browser: transition committed → diagram updated",
        workers=2, reps=suite.reps, transitions=count, rate_per_s=rate, broker=suite.broker,
        measured="the page's MutationObserver time minus the transition's at (set at commit)")
    with Cluster(2, **suite.env):
        for mode, web_env in _modes(suite):
            case = f"{mode}: transition → diagram in Chromium"
            if web_env is None:
                suite.report.unavailable(scenario, case, "p99_ms",
                                         "skipped: needs the Redis broker (--broker redis)")
                continue
            with WebServer(**web_env) as server:
                try:
                    stats = repeat(suite.reps, lambda: _measure(suite, server.url, count, rate))
                finally:
                    _orm(_close_connection)
            suite.report.add(scenario, case, stats, UNITS)


# Django's ORM refuses the thread where Playwright's event loop runs: database work goes to
# this one thread, which keeps one connection (a thread per call leaked one per call).
_DATABASE = ThreadPoolExecutor(1, thread_name_prefix="bench-db")


def _orm(function, *args):
    return _DATABASE.submit(function, *args).result()


def _close_connection() -> None:
    from django.db import connections

    connections.close_all()


def _measure(suite, base_url: str, count: int, rate: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    _orm(reset_runs, suite.redis_url)
    run_id = _orm(service_start, "relay")
    session = _orm(_session_cookie)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.add_cookies([{"name": "sessionid", "value": session, "url": base_url}])
        page = context.new_page()
        page.add_init_script(OBSERVE)
        page.goto(f"{base_url}/runs/{run_id}/")
        page.wait_for_selector('#live.live.live', timeout=30_000)
        page.wait_for_selector('svg.diagram g.node.current[data-state="ping"]', timeout=30_000)
        _send_events(run_id, count, rate)
        last = count + 1  # the start, then one hop per event
        wait_until(lambda: any(s["seq"] >= last for s in page.evaluate("window.benchSeen")),
                   30, every=0.2)
        seen = page.evaluate("window.benchSeen")
        browser.close()
    stamps = _orm(_transition_times, run_id)
    first: dict[int, float] = {}  # a redraw of the same path (a resync) is not news
    for s in seen:
        first.setdefault(s["seq"], s["at"])
    latencies = [at - stamps[seq] * 1000 for seq, at in first.items() if seq in stamps]
    if not latencies:
        raise RuntimeError(f"the page showed none of the {count} hops: {seen[:5]}, "
                           f"{len(stamps)} transitions")
    got = summary(latencies)
    return {"p50_ms": got["p50"], "p99_ms": got["p99"], "max_ms": got["max"],
            "missed": count - len(latencies)}


def _send_events(run_id: str, count: int, rate: float) -> None:
    from taskapp.services import event_send

    def send(i: int) -> None:
        event_send(name="go", run_id=run_id, key=f"bench-{run_id}-{i}")

    began = time.time()
    for i in range(count):
        delay = began + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        _orm(send, i)


def _transition_times(run_id: str) -> dict[int, float]:
    """seq → epoch seconds of the run's transitions past the first (the events' hops)."""
    from taskapp import models

    rows = models.Transition.objects.filter(run_id=run_id, seq__gt=1).values_list("seq", "at")
    return {seq: at.timestamp() for seq, at in rows}

