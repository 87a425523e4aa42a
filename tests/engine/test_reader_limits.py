"""The reader's limits: each refuses what is over it with a message that names the limit, its
value, its default and its setting, and lets through what is at it."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

import pytest

from engine.language import ReaderLimits, decode_source, parse_duration, read_source
from engine.language import validate_text as validate
from engine.language.limits import MAX_PROBLEMS, SETTING_NAMES

TASK = """\
name: t
version: 1
start_state: a
{head}states:
  a:
{state}    transitions:
      - to: done
  done:
    final: succeeded
"""


def task(head: str = "", state: str = "") -> str:
    return TASK.format(head=head, state=state)


def first_error(text: str, **limits: int) -> str:
    report = validate(text, "t.yaml", ReaderLimits(**limits))
    assert report.errors, "no error"
    first = report.errors[0]
    return f"{first.line}:{first.column}: {first.message}"


def test_a_plain_task_reads_within_the_defaults():
    assert validate(task()).ok


def test_conf_defaults_are_the_engine_defaults():
    from taskapp.conf import DEFAULTS, conf

    assert {SETTING_NAMES[f.name]: f.default for f in fields(ReaderLimits)} == {
        key: DEFAULTS[key] for key in SETTING_NAMES.values()}
    assert conf.reader_limits() == ReaderLimits()


def test_conf_reads_a_changed_limit(settings):
    from taskapp.conf import conf

    settings.ASYNC_STATES = {"TASKFILE_MAX_DEPTH": 10}
    assert conf.reader_limits().max_depth == 10


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "64"])
def test_a_limit_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match="TASKFILE_MAX_NODES must be a positive whole number"):
        ReaderLimits(max_nodes=bad)


def test_depth_cannot_be_raised_past_what_the_parser_can_walk():
    with pytest.raises(ValueError, match="TASKFILE_MAX_DEPTH must be at most 200"):
        ReaderLimits(max_depth=201)


def test_source_size_counts_utf8_bytes():
    text = task(head="description: " + "é" * 20 + "\n")
    size = len(text.encode())
    assert validate(text, limits=ReaderLimits(max_source_bytes=size)).ok
    assert first_error(text, max_source_bytes=size - 1) == (
        f"1:1: the file is too big ({size:,} bytes): the limit is {size - 1:,} "
        "(TASKFILE_MAX_BYTES, default 1,048,576)")


def test_a_text_longer_than_the_limit_is_refused_without_encoding_it():
    assert first_error("x" * 101, max_source_bytes=100) == (
        "1:1: the file is too big (more than 100 bytes): the limit is 100 "
        "(TASKFILE_MAX_BYTES, default 1,048,576)")


def test_depth_at_the_limit_reads_and_one_more_is_refused():
    at = "a: [[[x]]]\n"  # the root mapping and 3 lists: 4 deep
    problems = validate(at, limits=ReaderLimits(max_depth=4)).problems
    assert "nested too deeply" not in str(problems)
    assert first_error(at, max_depth=3) == (
        "1:6: mappings and lists are nested too deeply: the limit is 3 "
        "(TASKFILE_MAX_DEPTH, default 64)")


def test_nodes_count_aliases_as_the_values_they_repeat():
    text = task(head="input_schema: {examples: &e [1, 2, 3], default: [*e, *e]}\n")
    # 1 root + 4 keys + 4 values... the exact count does not matter: the alias does.
    total = next(n for n in range(1, 200) if validate(text, limits=ReaderLimits(max_nodes=n)).ok)
    assert "too many values" in first_error(text, max_nodes=total - 1)
    assert "TASKFILE_MAX_NODES, default 10,000" in first_error(text, max_nodes=total - 1)


def test_billion_laughs_is_refused_at_once():
    lines = ["l0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 30)]
    report = validate("\n".join(lines))
    assert len(report.problems) == 1
    assert "too many values" in report.problems[0].message


def test_aliases_are_counted():
    text = task(head="description: &d x\ninput_schema: {examples: [*d, *d, *d]}\n")
    assert first_error(text, max_aliases=2) == (
        "5:35: the file uses too many aliases (*name): the limit is 2 "
        "(TASKFILE_MAX_ALIASES, default 1,000)")


def test_a_shared_anchor_reads_as_its_value():
    text = task(head="input_schema: {examples: &e [{a: 1}], default: *e}\n")
    report = validate(text)
    assert report.ok, report.problems
    assert report.task.input_schema == {"examples": [{"a": 1}], "default": [{"a": 1}]}


@pytest.mark.parametrize("value, message", [
    ("&r [*r]", "the alias '*r' is inside the value it repeats (a recursive alias)"),
    ("&r {x: [*r]}", "the alias '*r' is inside the value it repeats (a recursive alias)"),
    ("*r", "the alias '*r' has no anchor '&r' before it; define the anchor first"),
])
def test_alias_errors_are_problems(value, message):
    assert message in first_error(task(head=f"description: {value}\n"))


def test_key_and_string_lengths():
    key = task(head="input_schema: {properties: {" + "k" * 13 + ": {}}}\n")
    assert first_error(key, max_key_chars=12) == (  # input_schema has 12
        "4:29: this key is too long (13 characters): the limit is 12 "
        "(TASKFILE_MAX_KEY_CHARS, default 256)")
    text = task(head="description: " + "x" * 11 + "\n")
    assert first_error(text, max_string_chars=10) == (
        "4:14: this value is too long (11 characters): the limit is 10 "
        "(TASKFILE_MAX_STRING_CHARS, default 100,000)")


def test_counts_of_states_instructions_and_transitions():
    assert first_error(task(), max_states=1) == (
        "5:3: too many states (2): the limit is 1 (TASKFILE_MAX_STATES, default 1,000)")
    two_sets = "    instructions:\n      - set: {x: 1}\n      - set: {y: 1}\n"
    assert first_error(task(state=two_sets), max_instructions=1) == (
        "7:7: too many instructions of state 'a' (2): the limit is 1 "
        "(TASKFILE_MAX_INSTRUCTIONS, default 100)")
    two = task().replace("      - to: done\n", "      - to: done\n        when: data.x\n"
                         "      - to: done\n")
    assert first_error(two, max_transitions=1) == (
        "7:7: too many transitions of state 'a' (2): the limit is 1 "
        "(TASKFILE_MAX_TRANSITIONS, default 100)")


@pytest.mark.parametrize("value, message", [
    ("99999999999999999999", "the number '99999999999999999999' is too large"),
    ("-9223372036854775808", "the number '-9223372036854775808' is too large"),
    ("1" * 101, "is too long; whole numbers must lie within"),
    ("1.0e+999", "the number '1.0e+999' is not finite"),
    (".nan", "the number '.nan' is not finite"),
    ("!!int twelve", "'twelve' is not a valid int"),
    ("!!float x", "'x' is not a valid float"),
    ("!!bool maybe", "'maybe' is not a valid bool"),
    ("!!binary aGk=", "unsupported YAML: the tag 'tag:yaml.org,2002:binary' is not allowed"),
    ("!!timestamp 2020-01-01", "the tag 'tag:yaml.org,2002:timestamp' is not allowed"),
    ("!!set {a: null}", "the tag 'tag:yaml.org,2002:set' is not allowed"),
])
def test_scalars_outside_json_are_problems(value, message):
    text = task(state=f"    instructions:\n      - set: {{x: {value}}}\n")
    assert message in first_error(text)


def test_the_widest_integer_is_allowed():
    text = task(state="    instructions:\n      - set: {x: 9223372036854775807}\n")
    assert validate(text).ok


@pytest.mark.parametrize("value, message", [
    ("99999999999", "duration 99999999999 is too long: a duration may be at most 100 years"),
    ("36525d1ms", "duration '36525d1ms' is too long"),
    ("99999999999999999999999d", "duration '99999999999999999999999d' is too long"),
    ("1.0e+300", "duration 1e+300 is too long"),
])
def test_durations_are_range_checked(value, message):
    assert message in first_error(task(state=f"    timeout: {value}\n"))


def test_the_longest_duration_is_allowed():
    assert parse_duration("36525d") == timedelta(days=36_525)
    assert parse_duration(36_525 * 86_400) == timedelta(days=36_525)
    for bad in (float("inf"), float("nan"), 10**30, "0" * 40 + "1d" + "9" * 30 + "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_version_and_retention_fit_their_columns():
    assert first_error(task().replace("version: 1", "version: 2147483648")) == (
        "2:10: version must be at most 2,147,483,647, got 2147483648")
    retention = task(head="retention: {failed_days: 36526}\n")
    assert "failed_days must be at most 36,525, got 36526" in first_error(retention)
    assert validate(task(head="retention: {max_finished_runs: 2147483647}\n")).ok


def test_state_names_like_off_survive():
    text = "name: t\nversion: 1\nstart_state: 'on'\nstates:\n  on:\n    transitions:\n" \
           "      - to: off\n  off:\n    final: succeeded\n"
    report = validate(text)
    assert report.ok and report.task.state_names == ("on", "off")


def test_problems_are_capped():
    text = task(head="".join(f"x{i}: 1\n" for i in range(1000)))
    report = validate(text)
    assert MAX_PROBLEMS <= len(report.problems) <= 2 * MAX_PROBLEMS + 10


def test_messages_do_not_echo_a_whole_value():
    report = validate(task().replace("name: t", "name: " + "X" * 50_000))
    assert all(len(p.message) < 500 for p in report.problems)


def test_a_missing_state_lists_twenty_names_at_most():
    states = "".join(f"  s{i}:\n    final: succeeded\n" for i in range(40))
    report = validate(task().replace("  done:\n", states + "  done:\n").replace(
        "to: done", "to: nowhere"))
    message = next(p.message for p in report.errors if "nowhere" in p.message)
    assert message.endswith("… (22 more)")


def test_bytes_that_are_not_utf8_are_placed():
    text, problems = decode_source(b"name: t\ndescription: caf\xe9\n", "b.yaml")
    assert text is None
    assert str(problems[0]) == (
        "b.yaml:2:17: error: byte 0xe9 is not UTF-8; task files are UTF-8 text "
        "(save the file as UTF-8)")
    text, problems = decode_source("name: t".encode("utf-16"), "b.yaml")
    assert problems[0].message.startswith("the file is UTF-16")
    assert decode_source(b"\xef\xbb\xbfname: t\n", "b.yaml") == ("\ufeffname: t\n", [])


def test_read_source_stops_after_the_limit(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"x" * 5000)
    text, problems = read_source(path, "big.yaml", ReaderLimits(max_source_bytes=100))
    assert text is None
    assert problems[0].message.startswith("the file is too big (more than 100 bytes)")


def test_a_lone_surrogate_from_json_is_a_problem():
    report = validate("description: \ud800\n")
    assert report.errors[0].message.startswith("character #xd800 is not allowed in YAML")


def test_templates_are_counted_and_measured():
    sets = "".join(f"          k{i}: '{{{{ data.x }}}}'\n" for i in range(3))
    text = task(state="    instructions:\n      - set:\n" + sets)
    assert validate(text, limits=ReaderLimits(max_templates=3)).ok
    assert first_error(text, max_templates=2) == (
        "10:15: too many templates and predicates: the limit is 2 "
        "(TASKFILE_MAX_TEMPLATES, default 300)")
    assert first_error(text, max_template_chars=30) == (
        "10:15: templates and predicates are too long in all: the limit is 30 "
        "(TASKFILE_MAX_TEMPLATE_CHARS, default 30,000)")


def test_a_template_nested_past_the_template_parser_is_a_problem():
    deep = "{{ " + "(" * 1500 + "1" + ")" * 1500 + " }}"
    text = task(state=f"    instructions:\n      - set: {{x: '{deep}'}}\n")
    assert "nested more than 50 levels deep" in first_error(text)


@pytest.mark.parametrize("value", ["!!int", "!!float ''", "!!bool ''", "!!int +", "!!int 0x"])
def test_an_explicit_tag_on_text_it_cannot_read_is_a_problem(value):
    assert "is not a valid" in first_error(task(state=f"    timeout: {value}\n"))


def test_the_engine_never_hands_yaml_to_a_recursive_composer():
    """PyYAML's load/compose functions recurse per nesting level and expand aliases: task text
    goes only through engine.language.composer, which bounds both first."""
    import ast
    from pathlib import Path

    recursive = {"load", "safe_load", "full_load", "unsafe_load", "load_all", "safe_load_all",
                 "compose", "compose_all", "get_single_node", "get_single_data",
                 "construct_document"}
    engine = Path(__file__).resolve().parents[2] / "engine"
    found = [
        f"{path.relative_to(engine.parent)}:{node.lineno} {node.attr}"
        for path in engine.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in recursive
        and isinstance(node.value, ast.Name) and node.value.id in ("yaml", "loader", "self")
    ]
    assert found == []
