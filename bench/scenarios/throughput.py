"""Throughput: chain10 runs (10 transitions each, no instructions) started through the
service layer and through the REST API, driven by 1, 2 and 4 cluster workers; and the same
through 1, 2 and 3 cluster processes (scale-out, as if on several hosts)."""

from __future__ import annotations

from contextlib import ExitStack

from bench.harness import Cluster, WebServer, repeat, reset_runs
from bench.scenarios.common import RestClient, api_available, api_token, service_start, throughput

UNITS = {"transitions_per_s": "/s", "ms_per_transition": "ms"}


def run(suite) -> None:
    runs = suite.pick(quick=40, full=1000)
    workers = suite.pick(quick=(1, 2), full=(1, 2, 4))
    scenario = suite.report.scenario(
        "throughput", "Throughput: chain10 runs, transitions/s end to end",
        runs=runs, task="chain10 (10 states, 10 transitions a run, no instructions)",
        workers=list(workers), reps=suite.reps, rest_client_threads=4,
        broker=suite.broker, measured="Transition rows / (last Transition.at - first start)")
    missing = api_available()
    server = None if missing else WebServer(**suite.env)
    with ExitStack() as stack:
        if server:
            stack.enter_context(server)
            client = RestClient(server.url, api_token())
        for count in workers:
            with Cluster(count, **suite.env):
                stats = repeat(suite.reps, lambda: _once(suite, runs, service_start, 1))
                suite.report.add(scenario, f"service, {count} workers", stats, UNITS,
                                 throughput=("transitions_per_s",))
                if missing:
                    suite.report.unavailable(scenario, f"REST, {count} workers",
                                             "transitions_per_s", missing)
                    continue
                stats = repeat(suite.reps, lambda: _once(suite, runs, _rest(client), 4))
                suite.report.add(scenario, f"REST, {count} workers", stats, UNITS,
                                 throughput=("transitions_per_s",))


def run_scale_out(suite) -> None:
    runs = suite.pick(quick=40, full=1000)
    processes = suite.pick(quick=(1, 2), full=(1, 2, 3))
    scenario = suite.report.scenario(
        "scale_out", "Scale-out: 1, 2, 3 cluster processes (2 workers each) on one PG + Redis",
        runs=runs, task="chain10", processes=list(processes), workers_per_process=2,
        reps=suite.reps, started_via="service",
        note="each cluster in its own process group, as on separate hosts; 2 cores in all")
    for count in processes:
        with ExitStack() as stack:
            for _ in range(count):
                stack.enter_context(Cluster(2, **suite.env))
            stats = repeat(suite.reps, lambda: _once(suite, runs, service_start, 1))
        suite.report.add(scenario, f"{count} cluster process(es)", stats, UNITS,
                         throughput=("transitions_per_s",))


def _once(suite, runs: int, start, threads: int) -> dict[str, float]:
    reset_runs(suite.redis_url)
    return throughput(lambda i: start("chain10"), runs, timeout=suite.pick(120, 600),
                      threads=threads)


def _rest(client: RestClient):
    return lambda task: client.start(task)
