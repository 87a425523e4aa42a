"""Scenario wrapper for ``bench.ceiling``: 1 and 2 processes; sets the report's ceiling."""

from __future__ import annotations

import os

from bench.ceiling import measure
from bench.harness import DEFAULT_PG, aggregate, drop_database, scratch_database


def run(suite) -> None:
    commits = suite.pick(quick=1000, full=5000)
    scenario = suite.report.scenario(
        "ceiling", "Ceiling: psycopg2, one UPDATE + one INSERT per commit",
        commits_per_process=commits, processes=[1, 2], reps=suite.reps,
        database="a scratch database on the same server")
    # A name of this run's own: two runs side by side (a shared machine) dropped each
    # other's scratch database mid-measurement.
    name = f"bench_ceiling_{os.getpid()}"
    url = scratch_database(DEFAULT_PG, name)
    best = 0.0
    try:
        for processes in (1, 2):
            stats = aggregate([{"commits_per_s": measure(url, processes, commits)}
                               for _ in range(suite.reps)])
            suite.report.add(scenario, f"{processes} process(es)", stats,
                             {"commits_per_s": "/s"})
            best = max(best, stats["commits_per_s"]["median"])
    finally:
        drop_database(DEFAULT_PG, name)
    suite.report.ceiling = best
    scenario.notes.append(f"ceiling for every ratio: {best:.0f} commits/s (the better median)")
