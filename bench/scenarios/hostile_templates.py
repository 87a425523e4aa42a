"""Hostile templates beside a normal flow, on a 2-worker cluster: the normal flow's latency
(run created → finished) quiet and then with hostile neighbours, in one run, and how every
hostile run ended. Each hostile run's ``set`` (or ``when``) holds one class of template that,
before template budgets, pinned a worker or grew it by gigabytes; each must fail its own run
with the budget error while the normal flow keeps its latency (target: p99 within 2x quiet).
"""

from __future__ import annotations

from bench.harness import Cluster, aggregate, paced, reset_runs, summary
from bench.scenarios.common import finished, service_start

NORMAL = """
name: bench_normal
version: 1
start_state: a
states:
  a:
    instructions:
      - set: {greeting: "Hello {{ input.name }}", n: "{{ input.items | length }}"}
    transitions:
      - to: b
  b:
    instructions:
      - set: {total: "{{ input.items | sum }}"}
    transitions:
      - to: done
        when: "data.total > 0"
      - to: done
  done: {final: succeeded}
"""

_SET = """
name: NAME
version: 1
start_state: a
states:
  a:
    instructions:
      - set: {v: "TEMPLATE"}
    transitions:
      - to: done
  done: {final: succeeded}
"""

_WHEN = """
name: NAME
version: 1
start_state: a
states:
  a:
    transitions:
      - to: done
        when: "TEMPLATE"
  done: {final: succeeded}
"""

_SHARED = ("{% set a = ['x' * 1000] %}{% set a = [a,a,a,a,a,a,a,a,a,a] %}"
           "{% set a = [a,a,a,a,a,a,a,a,a,a] %}{% set a = [a,a,a,a,a,a,a,a,a,a] %}")

# One task per class of hostile template: (name, shape, template).
HOSTILE = (
    ("power_tower", _SET, "{{ 10 ** (10 ** 8) }}"),
    ("repetition_300mb", _SET, "{{ 'x' * 300000000 }}"),
    ("center_padding", _SET, "{{ 'x' | center(1000000000) }}"),
    ("percent_width", _SET, "{{ '%0999999999d' | format(1) }}"),
    ("format_width", _SET, "{{ '{:>999999999}'.format(1) }}"),
    ("nested_loops", _SET, "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}"
                           "{% endfor %}{% endfor %}"),
    ("exponential_macro", _SET, "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}"
                                "{% endif %}{% endmacro %}{{ f(60) }}"),
    ("replace_blowup", _SET, "{{ ('x' * 100000).replace('x', 'y' * 100000) }}"),
    ("shared_lists", _SET, _SHARED + "{{ a | tojson }}"),
    ("predicate_power", _WHEN, "10 ** (10 ** 8) > 0"),
)

UNITS = {"p50_ms": "ms", "p99_ms": "ms", "max_ms": "ms"}


def load() -> None:
    from taskapp.services import definition_load

    texts = [NORMAL] + [shape.replace("NAME", f"bench_hostile_{name}").replace(
        "TEMPLATE", template.replace('"', '\\"')) for name, shape, template in HOSTILE]
    for text in texts:
        result = definition_load(text=text, source="bench")
        assert result.status in {"loaded", "unchanged"}, (result.status, result.message)


def run(suite) -> None:
    normal = suite.pick(quick=60, full=400)
    rounds = suite.pick(quick=2, full=8)  # each hostile class this many times
    rate = 10.0
    scenario = suite.report.scenario(
        "hostile_templates", "Hostile templates beside a normal flow",
        workers=2, normal_runs=normal, normal_rate_per_s=rate, hostile_classes=len(HOSTILE),
        hostile_runs=rounds * len(HOSTILE), broker=suite.broker,
        measured="normal flow Run.created_at → finished_at, quiet then with hostile runs "
                 "started among it")
    load()
    quiet, loud = [], []
    with Cluster(2, **suite.env) as cluster:
        for _ in range(suite.reps):  # alternated, so that both see the same machine
            quiet.append(_normal(suite, normal, rate, hostile=0))
            quiet[-1]["largest_process_mib"] = _largest(cluster)
            loud.append(_normal(suite, normal, rate, hostile=rounds))
            loud[-1]["largest_process_mib"] = _largest(cluster)
    memory = {**UNITS, "largest_process_mib": "MiB"}
    suite.report.add(scenario, "normal flow, quiet", aggregate(quiet), memory)
    suite.report.add(scenario, "normal flow, hostile neighbours", aggregate(loud), memory)
    suite.report.add(scenario, "hostile runs, created → failed", aggregate(loud), {
        "hostile_p50_ms": "ms", "hostile_max_ms": "ms", "hostile_failed_by_budget": "runs",
        "hostile_other": "runs"})
    ratios = [b["p99_ms"] / a["p99_ms"] for a, b in zip(quiet, loud, strict=True)]
    scenario.notes.append("p99 with hostile neighbours / quiet p99, per repetition: "
                          + ", ".join(f"{r:.2f}" for r in ratios) + " (target: within 2x)")
    scenario.notes.extend(sorted({note for sample in loud for note in sample["outcomes"]}))


def _largest(cluster: Cluster) -> float:
    """Resident MiB of the cluster's largest process (a worker that built a 300 MB string
    would show it here)."""
    return max(rss for _, rss in cluster.tree().values()) / 1024


def _normal(suite, count: int, rate: float, *, hostile: int) -> dict:
    """``count`` normal runs at ``rate``; ``hostile`` rounds of every hostile class started
    evenly among them. Latencies of the normal runs; how the hostile runs ended."""
    from taskapp import models

    reset_runs(suite.redis_url)
    every = max(count // max(hostile * len(HOSTILE), 1), 1) if hostile else 0
    queue = [f"bench_hostile_{name}" for _ in range(hostile) for name, _, _ in HOSTILE]
    normal_ids, hostile_ids = [], []
    for i in paced(count, rate):
        normal_ids.append(service_start("bench_normal", {"name": f"n{i}", "items": [1, 2, 3]}))
        if every and i % every == 0 and queue:
            hostile_ids.append(service_start(queue.pop(0)))
    hostile_ids += [service_start(task) for task in queue]
    assert finished(normal_ids + hostile_ids, 300), "runs did not finish"
    rows = models.Run.objects.filter(id__in=normal_ids).values_list("created_at", "finished_at")
    s = summary([(end - start).total_seconds() * 1000 for start, end in rows])
    result: dict = {"p50_ms": s["p50"], "p99_ms": s["p99"], "max_ms": s["max"]}
    if hostile:
        result.update(_outcomes(hostile_ids))
    return result


def _outcomes(ids: list[str]) -> dict:
    from taskapp import models

    by_budget, other, notes, took, slowest = 0, 0, [], [], {}
    for task, status, error, began, ended in models.Run.objects.filter(id__in=ids).values_list(
            "task_name", "status", "error", "created_at", "finished_at"):
        took.append((ended - began).total_seconds() * 1000)
        slowest[task] = max(slowest.get(task, 0.0), took[-1])
        message = (error or {}).get("message", "")
        if status == "failed" and "template budget exceeded" in message:
            by_budget += 1
        else:
            other += 1
            notes.append(f"{task}: {status}: {message[:160]}")
    s = summary(took)
    return {"hostile_failed_by_budget": by_budget, "hostile_other": other,
            "hostile_p50_ms": s["p50"], "hostile_max_ms": s["max"],
            "outcomes": (notes or [f"all {by_budget} hostile runs failed with the budget error"])
            + ["slowest hostile classes (created → failed, ms): " + ", ".join(
                f"{task.removeprefix('bench_hostile_')} {ms:.0f}" for task, ms in sorted(
                    slowest.items(), key=lambda kv: -kv[1])[:3])]}
