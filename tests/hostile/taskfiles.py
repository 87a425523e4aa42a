"""The task-file campaign: generate and mutate N task files, read each, report what broke.

Run it as ``python -m tests.hostile.taskfiles --count 10000`` (``--seed`` picks another
series; the same seed makes the same files), or call ``campaign(count)`` (``make faults`` does;
``tests/engine/test_reader_campaign.py`` runs a few hundred in ``make test``). Django is not
needed: it reads through ``engine.language`` as ``loadtasks`` does (bytes, then text, then a
definition stored as JSON).

For each file it records the outcome (a definition, problems, an exception, or a hang), the
wall and CPU time of one reading, and the peak memory (``tracemalloc``, in a second reading so
that tracing does not inflate the time). The files are read in a child process: a reading
that does not end within ``hang_seconds`` is recorded as a hang, the child is killed, and the
campaign goes on with the next file. The bar (docs/reliability.md): no exception, no hang, no
file over 1 s or 200 MB.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

from engine.language import decode_source, task_to_dict, validate_text
from engine.simulation.check import is_script
from tests.hostile.mutations import generate

ROOT = Path(__file__).resolve().parents[2]
SEED_FOLDERS = ("taskdefs", "tests/taskdefs/valid", "tests/taskdefs/invalid",
                "tests/taskdefs/hostile")
MAX_SECONDS = 1.0
MAX_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """One file's reading. ``kind``: task, problems, exception or hang."""

    index: int
    made: str
    size: int
    kind: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_bytes: int = 0
    error: str = ""


@dataclass(slots=True)
class CampaignReport:
    count: int
    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed: float = 0.0

    def of_kind(self, kind: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == kind]

    @property
    def failures(self) -> list[Outcome]:
        """Exceptions, hangs, and files over the time (CPU) or memory bar."""
        return [o for o in self.outcomes if o.kind in ("exception", "hang")
                or o.cpu_seconds > MAX_SECONDS or o.peak_bytes > MAX_BYTES]

    @property
    def ok(self) -> bool:
        return len(self.outcomes) == self.count and not self.failures

    def summary(self) -> str:
        done = self.outcomes or [Outcome(-1, "", 0, "none")]
        slowest = max(done, key=lambda o: o.seconds)
        slowest_cpu = max(done, key=lambda o: o.cpu_seconds)
        heaviest = max(done, key=lambda o: o.peak_bytes)
        times = sorted(o.seconds for o in done)
        lines = [
            f"task-file campaign: {len(self.outcomes)} of {self.count} files, seed {self.seed}, "
            f"{self.elapsed:.0f} s",
            f"  definitions {len(self.of_kind('task'))}, problems {len(self.of_kind('problems'))}"
            f", exceptions {len(self.of_kind('exception'))}, hangs {len(self.of_kind('hang'))}",
            f"  time per file: p50 {times[len(times) // 2] * 1000:.1f} ms, "
            f"p99 {times[int(len(times) * 0.99)] * 1000:.1f} ms, max {slowest.seconds:.3f} s "
            f"wall (#{slowest.index}: {slowest.made}), max {slowest_cpu.cpu_seconds:.3f} s CPU "
            f"(#{slowest_cpu.index})",
            f"  peak memory per file: max {heaviest.peak_bytes / 1e6:.1f} MB "
            f"(#{heaviest.index}: {heaviest.made})",
            f"  over {MAX_SECONDS:g} s CPU or {MAX_BYTES // 2**20} MB, exceptions, hangs: "
            f"{len(self.failures)}",
        ]
        lines += [f"    #{o.index} {o.kind} {o.cpu_seconds:.2f}s {o.peak_bytes / 1e6:.0f}MB "
                  f"{o.made}: {o.error}" for o in self.failures[:20]]
        return "\n".join(lines)


def seeds() -> list[tuple[str, bytes]]:
    """The files mutations start from: shipped tasks, test fixtures, the hostile corpus
    (not the simulation scripts kept beside the shipped tasks: they are no task files)."""
    found = []
    for folder in SEED_FOLDERS:
        for path in sorted(p for p in (ROOT / folder).glob("*.yaml") if not is_script(p)):
            found.append((path.relative_to(ROOT).as_posix(), path.read_bytes()))
    return found


def make_file(seed: int, index: int, corpus: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """File ``index`` of series ``seed``: the same pair always gives the same bytes."""
    return generate(random.Random(f"{seed}:{index}"), corpus)


def read(data: bytes, source: str = "campaign.yaml") -> str:
    """Read ``data`` as ``loadtasks`` does; ``task`` or ``problems`` (anything else raises).

    A definition must also survive what storing it does: JSON without NaN or infinities.
    """
    text, problems = decode_source(data, source)
    if text is None:
        assert problems, "undecodable bytes without a problem"
        return "problems"
    report = validate_text(text, source)
    if report.task is None:
        assert report.errors, "no definition and no error"
        return "problems"
    json.dumps(task_to_dict(report.task), allow_nan=False)
    return "task"


def measure(index: int, made: str, data: bytes) -> Outcome:
    """Read ``data`` twice: timed, then traced for its peak memory."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        kind, error = read(data), ""
    except Exception as exc:  # the campaign's point: record whatever escapes the reader
        kind, error = "exception", f"{type(exc).__name__}: {str(exc)[:200]}"
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    tracemalloc.start()
    try:
        read(data)
    except Exception:  # already recorded above
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return Outcome(index, made, len(data), kind, wall, cpu, peak, error)


def _work(connection, seed: int, start: int, count: int) -> None:
    """The child: measure files ``start`` .. ``count - 1``, sending each outcome."""
    sys.setrecursionlimit(1000)  # the default: a reader that needs more is a finding
    corpus = seeds()
    for index in range(start, count):
        made, data = make_file(seed, index, corpus)
        connection.send(measure(index, made, data))
    connection.send(None)


def campaign(count: int, seed: int = 0, hang_seconds: float = 30.0,
             progress: bool = False) -> CampaignReport:
    """Generate, read and measure ``count`` files (series ``seed``) and report.

    Args:
        count: how many files.
        seed: the series; ``make_file(seed, i, seeds())`` rebuilds file ``i``.
        hang_seconds: a reading taking longer is recorded as a hang and its child killed.
        progress: print a line to stderr every 500 files.
    """
    report = CampaignReport(count, seed)
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    next_index = 0
    while next_index < count:
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_work, args=(send, seed, next_index, count), daemon=True)
        child.start()
        send.close()
        next_index = _collect(report, receive, next_index, hang_seconds, progress)
        child.kill()
        child.join()
        receive.close()
    report.elapsed = time.perf_counter() - started
    return report


def _collect(report: CampaignReport, receive, next_index: int, hang_seconds: float,
             progress: bool) -> int:
    """Outcomes from one child until it finishes, dies or hangs; the next index to read."""
    while True:
        if not receive.poll(hang_seconds):
            report.outcomes.append(Outcome(next_index, "(see make_file)", 0, "hang",
                                           error=f"no answer within {hang_seconds:g} s"))
            return next_index + 1
        try:
            outcome = receive.recv()
        except EOFError:  # the child died (a crash below Python): that file is a finding
            report.outcomes.append(Outcome(next_index, "(see make_file)", 0, "exception",
                                           error="the reading process died"))
            return next_index + 1
        if outcome is None:
            return report.count
        report.outcomes.append(outcome)
        next_index = outcome.index + 1
        if progress and next_index % 500 == 0:
            print(f"  {next_index} files", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--show", type=int, metavar="INDEX",
                        help="print file INDEX of the series instead (to reproduce a finding)")
    args = parser.parse_args(argv)
    if args.show is not None:
        made, data = make_file(args.seed, args.show, seeds())
        print(f"# {made}", file=sys.stderr)
        sys.stdout.buffer.write(data)
        return 0
    report = campaign(args.count, args.seed, args.hang_seconds, progress=True)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
