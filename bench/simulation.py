"""The time of dry runs and of the checker (``engine.simulation``): the shipped tasks' kept
scripts (each replays hours to days of virtual time), the checker over every shipped and
documented task, and a dry run of a 999-state chain of one-hour waits (41 days of
virtual time). Pure Python, no database.

    .venv/bin/python bench/simulation.py [REPS]
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.language import load_file, load_text, validate_text  # noqa: E402
from engine.simulation import Bounds, parse_script, simulate  # noqa: E402
from engine.simulation.check import is_script, scripts_in  # noqa: E402
from engine.simulation.explore import explore  # noqa: E402


def _ms(work, reps: int) -> tuple[float, float, float]:
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), min(times), max(times)


def _kept_scripts() -> None:
    for pairing in scripts_in(ROOT / "taskdefs"):
        simulate(load_file(pairing.task), parse_script(pairing.script.read_text()))


def _documented():
    text = (ROOT / "docs/task-language.md").read_text()
    bodies = [m["body"] for m in re.finditer(r"^```yaml\n(?P<body>.*?)^```", text,
                                             re.DOTALL | re.MULTILINE)]
    return [r.task for b in bodies if (r := validate_text(b)).ok and r.task]


def _chain(states: int):
    lines = ["name: chain", "version: 1", "start_state: s0", "states:"]
    lines += [f"  s{i}: {{transitions: [{{to: s{i + 1}, wait: 1h}}]}}" for i in range(states)]
    lines.append(f"  s{states}: {{final: succeeded}}")
    return load_text("\n".join(lines) + "\n")


def main(reps: int) -> None:
    shipped = [load_file(p) for p in sorted((ROOT / "taskdefs").glob("*.yaml"))
               if not is_script(p)]
    documented = _documented()
    chain = _chain(998)
    bounds = Bounds(max_transitions=2000, max_steps=5000, max_wall_seconds=60)
    rows = [
        ("the 5 kept scripts of taskdefs/", lambda: _kept_scripts()),
        (f"checker, {len(shipped)} shipped tasks", lambda: [explore(t) for t in shipped]),
        (f"checker, {len(documented)} documented tasks",
         lambda: [explore(t) for t in documented]),
        ("dry run, 998 one-hour waits", lambda: simulate(chain, parse_script("until: 50d"),
                                                           bounds=bounds)),
    ]
    print("| what | ms (median, min-max) |\n| --- | ---: |")
    for name, work in rows:
        median, low, high = _ms(work, reps)
        print(f"| {name} | {median:.1f} ({low:.1f}-{high:.1f}) |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
