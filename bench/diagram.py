"""The time to draw a task's state diagram on the server (``engine.diagram``: graph model,
layered layout and SVG), for tasks of 10, 50, 200 and 1,000 states (the reader's
``max_states``): each a chain with a retry edge back to the start and an ``on_error`` route
to a failed final, so layout has cycles and long edges to handle. Pure Python, no database.

    .venv/bin/python bench/diagram.py [REPS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.diagram import diagram_of, to_dot, to_mermaid, to_svg  # noqa: E402
from engine.language.model import (  # noqa: E402
    Outcome,
    State,
    TaskDef,
    Transition,
    WaitCondition,
    WhenCondition,
)

SIZES = (10, 50, 200, 1000)


def task_of(states: int) -> TaskDef:
    from datetime import timedelta

    body = [State(f"step_{i:04d}", on_timeout="failed", timeout=timedelta(minutes=5),
                  transitions=(Transition(f"step_{i + 1:04d}" if i + 1 < states else "done",
                                          WaitCondition(duration=timedelta(seconds=i))),
                               Transition("step_0000", WhenCondition("data.retry == true"))))
            for i in range(states - 2)]
    return TaskDef(name=f"bench_{states}", version=1, start_state="step_0000", states=(
        *body, State("done", outcome=Outcome.SUCCEEDED), State("failed", outcome=Outcome.FAILED)))


def median_ms(function, reps: int) -> tuple[float, float, float]:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print("| states | edges | SVG (model + layout + markup), ms | DOT, ms | Mermaid, ms "
          "| SVG size |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in SIZES:
        task = task_of(size)
        count = reps if size <= 200 else max(3, reps // 5)
        svg = median_ms(lambda t=task: to_svg(diagram_of(t)), count)
        dot = median_ms(lambda t=task: to_dot(diagram_of(t)), count)
        mermaid = median_ms(lambda t=task: to_mermaid(diagram_of(t)), count)
        edges = len(diagram_of(task).edges)
        size_kb = len(to_svg(diagram_of(task)).encode()) / 1024
        print(f"| {size} | {edges} | {svg[0]:.1f} ({svg[1]:.1f}–{svg[2]:.1f}) | {dot[0]:.1f} | "
              f"{mermaid[0]:.1f} | {size_kb:,.0f} KiB |")


if __name__ == "__main__":
    main()
