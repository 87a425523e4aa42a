"""Profile the engine's step in-process (no queue): start N runs of a benchmark task with
dispatch turned off, then advance each with ``run_advance`` until it parks or finishes, all
under cProfile. Writes ``bench/profiles/<task>-<date>.pstats`` and a ``.txt`` with the top
functions by cumulative and by own time.

    .venv/bin/python -m bench.profile --task chain10 --runs 200
    .venv/bin/python -m bench.profile --task parked --runs 200
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from datetime import datetime

from bench.harness import DEFAULT_PG, ROOT, scratch_database, setup_django

INPUTS = {
    "chain10": lambda i: {},
    "parked": lambda i: {"key": f"k{i}", "due": time.time() + 3600},
    "timed": lambda i: {"due": time.time() + 3600},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(INPUTS), default="chain10")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    setup_django(scratch_database(DEFAULT_PG, "bench_profile"), ASYNC_STATES_LOG_LEVEL="WARNING")
    from django.conf import settings

    from bench.scenarios.common import load_tasks
    from taskapp.conf import conf
    from taskapp.services import run_advance, run_start

    settings.ASYNC_STATES = {**settings.ASYNC_STATES, "DISPATCH": "none"}
    conf.reload()
    load_tasks()
    ids = [run_start(task=args.task, input=INPUTS[args.task](i))[0].pk for i in range(args.runs)]
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    for run_id in ids:
        run_advance(run_id=run_id)
    profile.disable()
    elapsed = time.perf_counter() - began
    _write(profile, args.task, args.runs, elapsed)


def _write(profile: cProfile.Profile, task: str, runs: int, elapsed: float) -> None:
    from taskapp import models

    transitions = models.Transition.objects.count()
    out = ROOT / "bench" / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{task}-{datetime.now():%Y-%m-%d-%H%M}"
    profile.dump_stats(f"{stem}.pstats")
    text = io.StringIO()
    text.write(f"{runs} runs of {task}, one run_advance each, in-process: {elapsed:.2f} s, "
               f"{transitions} transitions, {transitions / elapsed:.0f} transitions/s "
               f"(profiler on)\n\n")
    stats = pstats.Stats(profile, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    stem.with_suffix(".txt").write_text(text.getvalue())
    print(text.getvalue()[:6000])
    print(f"written {stem}.pstats and .txt")


if __name__ == "__main__":
    main()
