"""Profile the engine's step in-process (no queue): start N runs of a benchmark task with
dispatch turned off, then advance each with ``run_advance`` until it parks or finishes, all
under cProfile. Writes a readable summary, ``bench/profiles/<task>-<date>.txt``, with the top
functions by cumulative and by own time (kept in the repository), and the raw
``bench/results/<task>-<date>.pstats`` (not kept: it embeds this machine's paths).

    .venv/bin/python -m bench.profile --task chain10 --runs 200
    .venv/bin/python -m bench.profile --task parked --runs 200
    .venv/bin/python -m bench.profile --task parked --runs 200 --wake
    .venv/bin/python -m bench.profile --task step10 --runs 100   # 10 HTTP calls a run
    .venv/bin/python -m bench.profile --task step10 --runs 100 --cpu 3

``--cpu N`` first advances N batches of ``--runs`` runs unprofiled and prints the process's
CPU time per transition of each (the profiler's own cost inflates the profile's times, and
a loaded machine its wall-clock times; CPU time per transition is what to compare).

``--wake`` (parked only) profiles the other half of waiting: the runs are parked first,
unprofiled, then half are woken by their timer and half by an event, and only those steps
are profiled.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from datetime import datetime

from bench.harness import DEFAULT_PG, ROOT, drop_database, scratch_database, setup_django

INPUTS = {
    "chain10": lambda i: {},
    "parked": lambda i: {"key": f"k{i}", "due": time.time() + 3600},
    "timed": lambda i: {"due": time.time() + 3600},
    "step10": lambda i: {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(INPUTS), default="chain10")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--wake", action="store_true", help="profile waking parked runs")
    parser.add_argument("--cpu", type=int, default=0, metavar="N",
                        help="first measure CPU time per transition, unprofiled, N times")
    args = parser.parse_args()
    if args.wake and args.task != "parked":
        parser.error("--wake is for --task parked")
    # A database of this run's own: two profiles side by side must not drop each other's.
    database = f"bench_profile_{os.getpid()}"
    setup_django(scratch_database(DEFAULT_PG, database), ASYNC_STATES_LOG_LEVEL="WARNING")
    from django.conf import settings

    from bench.scenarios.common import load_tasks
    from taskapp import models
    from taskapp.conf import conf
    from taskapp.services import run_advance, run_start

    settings.ASYNC_STATES = {**settings.ASYNC_STATES, "DISPATCH": "none"}
    conf.reload()
    load_tasks()
    if args.task == "step10":
        _far_end()
    for batch in range(args.cpu):
        _cpu_per_transition(args.task, args.runs, batch)
    inputs = (_waking_inputs(args.runs) if args.wake
              else [INPUTS[args.task](i) for i in range(args.runs)])
    ids = [run_start(task=args.task, input=given)[0].pk for given in inputs]
    if args.wake:
        _park_then_fire(ids, due=inputs[0]["due"])
    before = models.Transition.objects.count()  # the --cpu batches' too
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    for run_id in ids:
        run_advance(run_id=run_id)
    profile.disable()
    elapsed = time.perf_counter() - began
    _write(profile, f"{args.task}-wake" if args.wake else args.task, args.runs, elapsed,
           models.Transition.objects.count() - before)
    drop_database(DEFAULT_PG, database)


def _cpu_per_transition(task: str, runs: int, batch: int) -> None:
    """Start ``runs`` runs of ``task`` and advance each once, unprofiled; print the CPU
    time this process spent per transition."""
    from taskapp import models
    from taskapp.services import run_advance, run_start

    ids = [run_start(task=task, input=INPUTS[task](i))[0].pk for i in range(runs)]
    before = models.Transition.objects.count()
    began = time.process_time()
    for run_id in ids:
        run_advance(run_id=run_id)
    spent = time.process_time() - began
    transitions = models.Transition.objects.count() - before
    print(f"unprofiled batch {batch + 1}: {1000 * spent / max(transitions, 1):.3f} ms CPU "
          f"per transition ({transitions} transitions)")


def _far_end() -> None:
    """step10's far end, ``python -m bench.far_end`` answering at once in a process of its
    own (keep-alive, as in the benchmark: the profile counts the client's side only), and
    the task itself."""
    import atexit
    import os

    from bench.scenarios.step10 import STEP10, FarEndProcess
    from taskapp.services import definition_load

    far = FarEndProcess(0.0).__enter__()
    atexit.register(far.__exit__)
    os.environ["ASYNC_STATES_SECRET_FAR"] = far.url
    definition_load(text=STEP10, source="bench")


WAKE_AFTER = 5.0  # seconds, plus 10 ms a run: long enough to park every run first


def _waking_inputs(runs: int) -> list[dict]:
    """Even runs' timers come due shortly after they are parked; odd ones wait an hour for
    their event."""
    soon = time.time() + WAKE_AFTER + runs * 0.01
    return [{"key": f"k{i}", "due": soon if i % 2 == 0 else time.time() + 3600}
            for i in range(runs)]


def _park_then_fire(ids: list, due: float) -> None:
    """Park every run (unprofiled), send the odd ones' events, and wait for the timers."""
    from taskapp.services import event_send, run_advance

    for run_id in ids:
        run_advance(run_id=run_id)
    for i in range(1, len(ids), 2):
        event_send(name="go", correlation=f"k{i}")
    if time.time() > due:
        raise SystemExit(f"parking took longer than {WAKE_AFTER} s: the timers came due early")
    time.sleep(due - time.time() + 0.1)


def _write(profile: cProfile.Profile, task: str, runs: int, elapsed: float,
           transitions: int) -> None:
    name = f"{task}-{datetime.now():%Y-%m-%d-%H%M}"
    stem, raw = ROOT / "bench" / "profiles" / name, ROOT / "bench" / "results" / name
    for folder in (stem.parent, raw.parent):
        folder.mkdir(parents=True, exist_ok=True)
    profile.dump_stats(f"{raw}.pstats")
    text = io.StringIO()
    text.write(f"{runs} runs of {task}, one run_advance each, in-process: {elapsed:.2f} s, "
               f"{transitions} transitions, {transitions / elapsed:.0f} transitions/s "
               f"(profiler on)\n\n")
    stats = pstats.Stats(profile, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    stem.with_suffix(".txt").write_text(text.getvalue())
    print(text.getvalue()[:6000])
    print(f"written {stem}.txt and {raw}.pstats")


if __name__ == "__main__":
    main()
