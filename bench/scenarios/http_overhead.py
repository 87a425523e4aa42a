"""HTTP instruction overhead: what one HTTP instruction costs the engine beyond the far
end's own time. A local server (loopback, answers at once, times its own handling) is
called by http10 (9 states, one POST each); chain10 is the same path without the calls.
Runs go one at a time through a 1-worker cluster, so nothing queues.

  per-call overhead = (run time of http10 − run time of chain10) / 9 − server time per call
  attempt overhead  = InstructionAttempt.duration − server time per call (the client side:
                      template rendering, requests, response parsing)
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.harness import Cluster, repeat, reset_runs
from bench.scenarios.common import finished, service_start

CALLS = 9


class FarEnd:
    def __init__(self) -> None:
        self.handling: list[float] = []
        far = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # As any production server does: without it, headers and body in two writes
            # meet the client's delayed ACK and every call waits ~40 ms (measured here).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                began = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                far.handling.append(time.perf_counter() - began)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(suite) -> None:
    runs = suite.pick(quick=4, full=40)
    scenario = suite.report.scenario(
        "http_overhead", "HTTP instruction: engine overhead per call beyond the server's time",
        runs_per_rep=runs, calls_per_run=CALLS, workers=1, reps=suite.reps,
        server="ThreadingHTTPServer on 127.0.0.1, answers at once",
        compared_with="chain10 (same states, no calls)")
    far = FarEnd()
    try:
        with Cluster(1, **suite.env, ASYNC_STATES_SECRET_FAR=far.url):
            stats = repeat(suite.reps, lambda: _once(suite, far, runs))
    finally:
        far.close()
    suite.report.add(scenario, "one HTTP instruction", stats, {
        "overhead_per_call_ms": "ms", "attempt_overhead_ms": "ms", "server_ms": "ms",
        "http10_run_ms": "ms", "chain10_run_ms": "ms"})


def _once(suite, far: FarEnd, runs: int) -> dict[str, float]:
    from taskapp import models

    reset_runs(suite.redis_url)
    far.handling.clear()
    durations = {task: [_run_ms(task) for _ in range(runs)] for task in ("chain10", "http10")}
    server_ms = statistics.median(far.handling) * 1000
    attempts = list(models.InstructionAttempt.objects.values_list("duration", flat=True))
    http10, chain10 = (statistics.median(durations[t]) for t in ("http10", "chain10"))
    return {"overhead_per_call_ms": (http10 - chain10) / CALLS - server_ms,
            "attempt_overhead_ms": statistics.median(attempts) * 1000 - server_ms,
            "server_ms": server_ms, "http10_run_ms": http10, "chain10_run_ms": chain10}


def _run_ms(task: str) -> float:
    """One run, alone: its first transition to its last."""
    from django.db.models import Max, Min

    from taskapp import models

    run_id = service_start(task)
    assert finished([run_id], 60), f"{task} run {run_id} did not finish"
    span = models.Transition.objects.filter(run_id=run_id).aggregate(a=Min("at"), b=Max("at"))
    return (span["b"] - span["a"]).total_seconds() * 1000
