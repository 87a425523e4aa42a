from pathlib import Path

import pytest

from engine.errors import SpecError
from engine.language import load_file, load_text, validate_file, validate_text
from engine.language.model import Mark, Outcome
from engine.language.yamlnodes import MarkIndex, read_yaml

MINIMAL = """\
name: t
version: 1
start_state: a
states:
  a:
    transitions: [{to: done}]
  done: {final: succeeded}
"""


def test_minimal_task_loads():
    task = load_text(MINIMAL)
    assert (task.name, task.version, task.start_state) == ("t", 1, "a")
    assert task.state("done").outcome is Outcome.SUCCEEDED
    assert task.state("a").transitions[0].condition is None


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "On", "NO", "y", "n"])
def test_yaml_11_boolean_words_stay_strings(word):
    root, problems = read_yaml(f"{word}: {word}\n")
    assert problems == [] and root.plain() == {word: word}


def test_true_and_false_are_booleans_and_dates_stay_strings():
    root, _ = read_yaml("a: true\nb: False\nc: 2024-01-01\n")
    assert root.plain() == {"a": True, "b": False, "c": "2024-01-01"}


def test_marks_are_one_based():
    root, _ = read_yaml("a:\n  b: [1, 2]\n", "f.yaml")
    index = MarkIndex(root, "f.yaml")
    assert index.key("a.b") == Mark("f.yaml", 2, 3)
    assert index.value("a.b[1]") == Mark("f.yaml", 2, 10)
    assert index.value("a.b[1].missing") == Mark("f.yaml", 2, 10)


def test_duplicate_key_is_reported_at_the_second():
    _, problems = read_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert [(p.line, p.column, p.path) for p in problems] == [(3, 1, "a")]


def test_python_tags_are_refused():
    _, problems = read_yaml("a: !!python/object/apply:os.system [ls]\n")
    assert problems and problems[0].message.startswith("unsupported YAML")


def test_all_problems_are_collected_in_line_order():
    text = MINIMAL.replace("version: 1", "version: 0").replace("{to: done}", "{to: dne, wiat: 1}")
    report = validate_text(text)
    assert [p.line for p in report.problems] == sorted(p.line for p in report.problems)
    assert len(report.errors) >= 2
    assert report.task is None and not report.ok


def test_load_text_raises_spec_error_with_every_problem():
    with pytest.raises(SpecError) as caught:
        load_text("name: Bad Name\nversion: x\n", "t.yaml")
    assert len(caught.value.problems) >= 3
    assert str(caught.value).startswith("t.yaml:1:1: error: missing required key 'start_state'")
    assert "bad task name 'Bad Name'" in [p.message.split(":")[0] for p in caught.value.problems]


def test_problem_str_has_file_line_column_severity_and_path():
    report = validate_text(MINIMAL.replace("transitions:", "trasitions:"), "x.yaml")
    assert str(report.problems[0]) == (
        "x.yaml:6:5: error: unknown key 'trasitions' in state 'a'; "
        "did you mean 'transitions'? (states.a.trasitions)"
    )


def test_defaults_are_filled_in():
    text = MINIMAL.replace(
        "    transitions: [{to: done}]",
        "    instructions:\n      - http: {url: 'http://x'}\n    transitions: [{to: done}]",
    )
    instruction = load_text(text).state("a").instructions[0]
    assert (instruction.name, instruction.spec.method, instruction.retry.max_attempts) == (
        "http_0",
        "GET",
        1,
    )
    assert instruction.timeout.total_seconds() == 30


def test_retry_shorthand_and_poll_instruction():
    task = load_file(Path("taskdefs/order_fulfilment.yaml"))
    paid = task.state("paid")
    assert paid.instructions[0].retry.max_attempts == 3
    poll = paid.transitions[0].condition
    assert (poll.instruction.kind, poll.instruction.name, poll.instruction.save_as) == (
        "http",
        "poll",
        "shipment",
    )
    assert poll.instruction.retry.max_attempts == 1


def test_state_listed_only_in_final_states_exists():
    task = load_file("taskdefs/order_fulfilment.yaml")
    assert task.state("lost").outcome is Outcome.FAILED


def test_validate_file_uses_the_path_as_given():
    report = validate_file("taskdefs/hello.yaml")
    assert report.source == "taskdefs/hello.yaml" and report.ok and report.warnings == ()
