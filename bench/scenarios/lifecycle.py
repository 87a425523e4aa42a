"""lifecycle: what publishing lifecycle events costs each transition. chain10 (10 transitions
a run, no instructions), chain10_stored (the same task with ``lifecycle:`` to a webhook that
refuses connections: its events are written, and the publisher backs off) and chain10_events
(``lifecycle:`` to a loopback receiver that answers at once: written and published while the
runs go) run in turn on one 2-worker cluster, in each repetition.

  overhead per transition = ms per transition (the task) − ms per transition (chain10)

chain10_stored's is the cost on the commit path; chain10_events' adds the publisher's work
(claims, deletes, its CPU) on the same 2 cores and database.

and, for the events: how long after the last transition the outbox was empty (drain), and
events delivered per second from the first start to then.

    .venv/bin/python -m bench.run --only ceiling,lifecycle [--quick]
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.harness import Cluster, repeat, reset_runs, wait_until
from bench.scenarios.common import CHAIN10, service_start, throughput

WORKERS = 2
CHAIN10_EVENTS = CHAIN10.replace("name: chain10\n",
                                 "name: chain10_events\nlifecycle: {connection: hook}\n")
# The same, to a webhook nobody serves (port 9 refuses at once): the publisher fails, backs
# off and leaves the events alone, so what remains is their cost on the commit path.
CHAIN10_STORED = CHAIN10.replace("name: chain10\n",
                                 "name: chain10_stored\nlifecycle: {connection: nowhere}\n")
NOWHERE = "http://127.0.0.1:9/events"
UNITS = {"transitions_per_s": "/s", "ms_per_transition": "ms",
         "overhead_ms_per_transition": "ms", "events_per_s": "/s", "drain_s": "s",
         "unfinished": "", "delivered": "", "undelivered": ""}
PLAIN_UNITS = {"transitions_per_s": "/s", "ms_per_transition": "ms", "unfinished": ""}
STORED_UNITS = {**PLAIN_UNITS, "overhead_ms_per_transition": "ms"}


class Receiver:
    """A webhook that takes every event at once and counts them."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._lock:
                    receiver.count += 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(suite) -> None:
    import os

    from taskapp.services import definition_load

    runs = suite.pick(quick=100, full=400)
    receiver = Receiver()
    os.environ["ASYNC_STATES_CONNECTION_HOOK"] = receiver.url  # for loading the tasks here
    os.environ["ASYNC_STATES_CONNECTION_NOWHERE"] = NOWHERE
    for text in (CHAIN10_EVENTS, CHAIN10_STORED):
        definition_load(text=text, source="bench")
    scenario = suite.report.scenario(
        "lifecycle", "lifecycle events: cost per transition, chain10 with and without",
        runs_per_rep=runs, transitions_per_run=10, workers=WORKERS, reps=suite.reps,
        destination="webhook on 127.0.0.1 (ThreadingHTTPServer, answers 204 at once)",
        started_via="service, 4 threads",
        alternated="chain10, chain10_stored, chain10_events, per rep")
    try:
        with Cluster(WORKERS, **suite.env, ASYNC_STATES_CONNECTION_HOOK=receiver.url,
                     ASYNC_STATES_CONNECTION_NOWHERE=NOWHERE):
            samples = repeat(suite.reps, _pair, suite, receiver, runs)
    finally:
        receiver.close()
    inline = repeat(suite.reps, _inline_pair, suite, suite.pick(quick=100, full=300))
    suite.report.add(scenario, "in-process run_advance, no cluster (commit path only)", inline,
                     {"chain10_ms_per_transition": "ms", "chain10_stored_ms_per_transition": "ms",
                      "overhead_ms_per_transition": "ms"})
    plain, stored, events = ({k[len(p):]: v for k, v in samples.items() if k.startswith(p)}
                             for p in ("plain_", "stored_", "events_"))
    suite.report.add(scenario, "chain10 (no lifecycle)", plain, PLAIN_UNITS,
                     throughput=("transitions_per_s",))
    suite.report.add(scenario, "chain10_stored (events written, not published)", stored,
                     STORED_UNITS, throughput=("transitions_per_s",))
    suite.report.add(scenario, "chain10_events (lifecycle: webhook)", events, UNITS,
                     throughput=("transitions_per_s",))


def _pair(suite, receiver: Receiver, runs: int) -> dict[str, float]:
    plain = _once(suite, "chain10", runs)
    stored = _once(suite, "chain10_stored", runs)
    stored["overhead_ms_per_transition"] = (stored["ms_per_transition"]
                                            - plain["ms_per_transition"])
    receiver.count = 0
    events = _once(suite, "chain10_events", runs)
    events.update(_drain(events, runs * 10))
    events["delivered"] = receiver.count  # at least once: a repeat would count twice
    events["overhead_ms_per_transition"] = (events["ms_per_transition"]
                                            - plain["ms_per_transition"])
    return {**{f"plain_{k}": v for k, v in plain.items()},
            **{f"stored_{k}": v for k, v in stored.items()},
            **{f"events_{k}": v for k, v in events.items()}}


def _inline_pair(suite, runs: int) -> dict[str, float]:
    """Runs advanced to their end by this process, one at a time, with no cluster (and so
    no publisher): chain10 and chain10_stored in turn, run by run, so both see the same
    load. What differs is the outbox INSERT in each commit."""
    import time as clock

    from taskapp.services import run_advance, run_start

    reset_runs(suite.redis_url)
    spent = {"chain10": 0.0, "chain10_stored": 0.0}
    for _ in range(runs):
        for task in spent:
            run, _ = run_start(task=task)
            began = clock.perf_counter()
            run_advance(run_id=run.pk)
            spent[task] += clock.perf_counter() - began
    per = {task: 1000 * seconds / (runs * 10) for task, seconds in spent.items()}
    return {"chain10_ms_per_transition": per["chain10"],
            "chain10_stored_ms_per_transition": per["chain10_stored"],
            "overhead_ms_per_transition": per["chain10_stored"] - per["chain10"]}


def _once(suite, task: str, runs: int) -> dict[str, float]:
    reset_runs(suite.redis_url)
    started = time.time()
    found = throughput(lambda i: service_start(task), runs, timeout=180, threads=4)
    found["started"] = started
    return found


def _drain(events: dict[str, float], expected: int) -> dict[str, float]:
    """Wait for the outbox to empty; when, after the last transition, and at what rate."""
    from taskapp import models

    empty = wait_until(lambda: not models.LifecycleEvent.objects.exists(), 180, every=0.05)
    done = time.time()
    last_commit = events["started"] + events["seconds"]
    return {"drain_s": max(done - last_commit, 0.0),
            "events_per_s": expected / (done - events["started"]),
            "undelivered": 0 if empty else models.LifecycleEvent.objects.count()}
