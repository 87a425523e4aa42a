"""The suite's report: scenarios with their parameters, and figures (median, min, max over
repetitions), printed as a table and written as JSON. Throughput figures also carry their
ratio to the psycopg2 ceiling measured in the same run."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    case: str
    metric: str
    unit: str
    median: float | None = None
    min: float | None = None
    max: float | None = None
    reps: int = 0
    ratio: float | None = None  # median / ceiling, for throughput
    note: str = ""  # "not available: ...", "skipped: ..."


@dataclass
class Scenario:
    name: str
    title: str
    params: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Report:
    machine: dict[str, Any]
    command: str
    mode: str
    scenarios: list[Scenario] = field(default_factory=list)
    ceiling: float | None = None  # commits/s: the better of one and two processes

    def scenario(self, name: str, title: str, **params: Any) -> Scenario:
        scenario = Scenario(name, title, params)
        self.scenarios.append(scenario)
        return scenario

    def add(self, scenario: Scenario, case: str, stats: dict[str, dict],
            units: dict[str, str], throughput: tuple[str, ...] = ()) -> None:
        """Add the metrics named in ``units`` from ``stats`` (``harness.aggregate``)."""
        for metric, unit in units.items():
            if metric not in stats:
                scenario.figures.append(Figure(case, metric, unit, note="no sample"))
                continue
            s = stats[metric]
            ratio = (s["median"] / self.ceiling if metric in throughput and self.ceiling
                     else None)
            scenario.figures.append(Figure(case, metric, unit, s["median"], s["min"],
                                           s["max"], s["reps"], ratio))

    def unavailable(self, scenario: Scenario, case: str, metric: str, why: str) -> None:
        scenario.figures.append(Figure(case, metric, "", note=why))

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "command": self.command, "mode": self.mode,
                "ceiling_commits_per_s": self.ceiling,
                "scenarios": [asdict(s) for s in self.scenarios]}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def table(self) -> str:
        lines = [f"Async States benchmark ({self.mode}) — {self.machine.get('summary', '')}"]
        for s in self.scenarios:
            lines.append("")
            lines.append(f"## {s.title}  [{s.seconds:.0f} s]")
            lines.append("   " + ", ".join(f"{k}={v}" for k, v in s.params.items()))
            for note in s.notes:
                lines.append(f"   note: {note}")
            lines.append(f"   {'case':<44} {'metric':<24} {'median':>10} {'min':>10} "
                         f"{'max':>10} {'reps':>4} {'÷ceiling':>8}")
            for f in s.figures:
                lines.append("   " + format_figure(f))
        return "\n".join(lines)


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_figure(f: Figure) -> str:
    metric = f"{f.metric} ({f.unit})" if f.unit else f.metric
    if f.note and f.median is None:
        return f"{f.case:<44} {metric:<24} {f.note}"
    ratio = f"{f.ratio:.0%}" if f.ratio is not None else ""
    return (f"{f.case:<44} {metric:<24} {fmt(f.median):>10} {fmt(f.min):>10} "
            f"{fmt(f.max):>10} {f.reps:>4} {ratio:>8}")


def markdown(data: dict[str, Any]) -> str:
    """The figures of a JSON report as Markdown tables, one per scenario."""
    ceiling = data.get("ceiling_commits_per_s")
    out = [f"Mode: {data['mode']}. Command: `{data['command']}`.", ""]
    if ceiling:
        out += [f"Ceiling for every ratio: **{ceiling:,.0f}** commits/s.", ""]
    for s in data["scenarios"]:
        out += [f"### {s['title']}", ""]
        out += ["Parameters: " + "; ".join(f"{k} = {v}" for k, v in s["params"].items())
                + f". Took {s['seconds']:.0f} s.", ""]
        out += [f"- {note}" for note in s["notes"]] + ([""] if s["notes"] else [])
        out += ["| case | metric | median | min | max | reps | ÷ ceiling |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for f in s["figures"]:
            metric = f"{f['metric']} ({f['unit']})" if f["unit"] else f["metric"]
            if f["note"] and f["median"] is None:
                out.append(f"| {f['case']} | {metric} | {f['note']} | | | | |")
                continue
            ratio = f"{f['ratio']:.0%}" if f["ratio"] is not None else ""
            out.append(f"| {f['case']} | {metric} | {fmt(f['median'])} | {fmt(f['min'])} | "
                       f"{fmt(f['max'])} | {f['reps']} | {ratio} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
