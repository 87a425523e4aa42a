"""The checker (engine.simulation.explore): every end and every stuck way, each with a
script that a dry run confirms; none stuck in the shipped tasks; the stuck ones found in
tests/taskdefs/stuck/, whose first line names what must be found."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.language import load_file, load_text, validate_text
from engine.simulation import parse_script, script_from_data, simulate
from engine.simulation.check import is_script
from engine.simulation.explore import explore
from engine.simulation.solve import aimed, sample_input
from tests.engine.test_docs_examples import documented_connections, yaml_examples

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (ROOT / "taskdefs").glob("*.yaml") if not is_script(p))
STUCK = sorted((ROOT / "tests/taskdefs/stuck").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_shipped_tasks_cannot_get_stuck_and_every_end_is_confirmed(path):
    report = explore(load_file(path))
    assert not report.bounded
    assert report.stuck == [], report.to_text()
    assert report.ends and all(f.confirmed for f in report.ends), report.to_text()


@pytest.mark.parametrize("path", STUCK, ids=lambda p: p.stem)
def test_the_checker_finds_each_purposely_broken_definition_stuck(path):
    kind, state = re.match(r"# stuck: (\w+) in (\w+)", path.read_text()).groups()
    report = explore(load_file(path))
    found = [(f.kind, f.state) for f in report.stuck]
    assert (kind, state) in found, report.to_text()
    finding = next(f for f in report.stuck if (f.kind, f.state) == (kind, state))
    assert finding.confirmed, finding.observed
    # The script it gives reproduces the stuck run: it is still waiting when time runs out.
    result = simulate(load_file(path), script_from_data(finding.script))
    assert result.status == "waiting" and result.end in ("stuck", "until")


def test_the_stuck_corpus_covers_every_kind_of_stuck():
    kinds = {re.match(r"# stuck: (\w+)", p.read_text()).group(1) for p in STUCK}
    assert kinds == {"unsent_event", "dead_end", "endless_poll", "no_exit_loop"}


def _documented_tasks():
    return [(line, body) for line, body in yaml_examples() if "start_state:" in body]


@pytest.mark.parametrize("example", _documented_tasks(), ids=lambda e: f"line{e[0]}")
def test_every_documented_task_is_explored_and_dry_run(example, monkeypatch):
    for name, url in documented_connections().items():
        monkeypatch.setenv(name, url)
    line, body = example
    task = load_text(body, f"task-language.md:{line}")
    report = explore(task, input=DOC_INPUTS.get(task.name))
    assert not report.bounded and report.ends
    assert report.stuck == [], report.to_text()  # the docs show tasks that always end
    confirmed = [f for f in report.ends + report.stuck if f.confirmed]
    assert confirmed, report.to_text()
    for finding in confirmed:  # each confirmed script is a dry run ending where it said
        result = simulate(task, script_from_data(finding.script))
        assert (result.status, result.state) == (finding.status, finding.state) or (
            finding.kind == "no_exit_loop")


# Inputs the docs' examples need that their input_schema (when they have one) does not say.
DOC_INPUTS = {
    "totals": {"name": "Ada", "items": [{"price": 2}, {"price": 3}]},
}


def test_the_checker_says_when_it_hit_its_bound():
    report = explore(load_file(ROOT / "taskdefs/order_fulfilment.yaml"), max_states=1)
    assert report.bounded and "BOUND HIT" in report.to_text()
    report = explore(load_file(ROOT / "taskdefs/order_fulfilment.yaml"), max_moves=2)
    assert report.bounded


def test_a_wide_definition_is_explored_within_its_bound_quickly():
    states = "\n".join(
        f"  s{i}:\n    transitions:\n      - {{to: s{i + 1}, wait: 1s}}\n"
        f"      - {{to: done, subscribe: {{event: e{i}}}}}" for i in range(300))
    task = load_text(f"name: wide\nversion: 1\nstart_state: s0\nstates:\n{states}\n"
                     "  s300: {transitions: [{to: done}]}\n  done: {final: succeeded}\n")
    report = explore(task, max_states=100, confirm=False)
    assert report.bounded and report.states_seen <= 100


def test_a_race_lists_each_condition_that_can_win_first():
    task = load_text("""
name: race
version: 1
start_state: waiting
states:
  waiting:
    timeout: 2d
    on_timeout: late
    transitions:
      - to: paid
        subscribe: {event: paid}
      - to: shipped
        poll: {name: status, http: {url: "https://x.example"}, every: 1h,
               until: "result.body.shipped", max_attempts: 10, on_error: lost}
      - to: reminded
        wait: 1d
  paid: {final: succeeded}
  shipped: {final: succeeded}
  reminded: {final: failed}
  late: {final: failed}
  lost: {final: failed}
""")
    report = explore(task)
    ends = {f.state: f for f in report.ends}
    # The poll gives up after 9 h, before the 1 d wait and the 2 d timeout: those two
    # can never win, and are not reported.
    assert set(ends) == {"paid", "shipped", "lost"}
    assert all(f.confirmed for f in report.ends), report.to_text()
    assert ends["paid"].script["events"] == [{"at": "1ms", "name": "paid"}]


def test_aimed_values_make_simple_comparisons_hold_or_fail():
    assert aimed(("input.total > 1000 and input.country in ['FR', 'DE']",)) == {
        ("input", ".total"): 1001, ("input", ".country"): "FR"}
    assert aimed(("not (result.body.status == 'shipped')",)) == {
        ("result", ".body.status"): "not-shipped"}


def test_sample_input_fills_the_required_properties():
    schema = {"type": "object", "required": ["id", "items", "n"], "properties": {
        "id": {"type": "string"}, "n": {"type": "integer", "minimum": 3},
        "items": {"type": "array", "minItems": 2, "items": {"enum": ["a"]}}}}
    assert sample_input(schema) == {"id": "simulated", "items": ["a", "a"], "n": 3}


def test_a_generated_script_reads_back_as_a_script():
    report = explore(load_file(ROOT / "taskdefs/order_approval.yaml"))
    for finding in report.ends:
        assert parse_script(yaml.safe_dump(finding.script)).expect is not None


# ---------------------------------------------------------------------------- properties

_CONDITIONS = st.sampled_from(["always", "wait 1h", "wait 2h", "event a", "event b",
                               "when x", "poll"])


@st.composite
def small_tasks(draw):
    """Tasks of 1-4 working states and two final ones, every state reachable (a chain),
    each with 1-3 transitions of any kind, maybe an instruction, a timeout, a deadline.
    ``EXPLORE_EXAMPLES=4000`` runs a longer campaign."""
    count = draw(st.integers(1, 4))
    names = [f"s{i}" for i in range(count)]
    targets = names + ["ok", "ko"]
    lines = ["name: small", "version: 1", "start_state: s0"]
    if draw(st.booleans()):
        lines.append(f"deadline: {draw(st.sampled_from(['30m', '1h', '3h']))}")
    lines.append("states:")
    for i, name in enumerate(names):
        kinds = draw(st.lists(_CONDITIONS, min_size=1, max_size=3))
        chain = names[i + 1] if i + 1 < count else "ok"
        lines.append(f"  {name}:")
        if draw(st.booleans()):
            on_error = draw(st.sampled_from([None, *targets]))
            lines.append(f"    instructions:\n      - name: call{i}\n"
                         f"        http: {{url: 'https://x.example/{i}'}}")
            if on_error:
                lines.append(f"        on_error: {on_error}")
        if draw(st.booleans()):
            lines.append(f"    timeout: 90m\n    on_timeout: {draw(st.sampled_from(targets))}")
        lines.append("    transitions:")
        for j, kind in enumerate(kinds):
            target = chain if j == 0 else draw(st.sampled_from(targets))
            lines.append(f"      - to: {target}")
            lines.extend(_condition(kind, j))
    lines += ["  ok: {final: succeeded}", "  ko: {final: failed}"]
    return "\n".join(lines) + "\n"


def _condition(kind: str, index: int) -> list[str]:
    if kind.startswith("wait"):
        return [f"        wait: {kind.split()[1]}"]
    if kind.startswith("event"):
        return [f"        subscribe: {{event: {kind.split()[1]}}}"]
    if kind == "when":
        return ["        when: 'input.flag'"]
    if kind == "poll":
        return [f"        poll: {{name: p{index}, http: {{url: 'https://x.example'}}, "
                "every: 20m, until: 'result.body.done', max_attempts: 3}"]
    return []


@settings(max_examples=int(os.environ.get('EXPLORE_EXAMPLES', '60')), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(small_tasks())
def test_every_path_the_checker_reports_is_one_the_runner_takes(text):
    """The checker's model of the race against the runner itself: every end and stuck way
    it reports for a random small task, its script makes the real runner reach."""
    report = validate_text(text)
    assume(report.ok)
    exploration = explore(report.task, input={"flag": False})
    assert not exploration.bounded
    for finding in exploration.ends + exploration.stuck:
        assert finding.confirmed, (text, exploration.to_text())
