"""The matcher that compares README output with real output (tests/readme.py): it must
accept what changes from run to run and nothing else, or the README test proves nothing."""

import pytest

from tests import readme

SHOW = [
    "run       01a227b9-05ce-727a-afe2-21a23cef5730",
    "status    succeeded",
    "created   2026-11-29 14:32:46",
    "metrics:",
    "{",
    '  "duration": 1.868357,',
    "...",
    "}",
    "   1  14:32:46.806  ∅ → awaiting_payment  (start)",
]
REAL = """\
run       01a227bf-e104-72a4-8c66-2ac0686ba2dc
status    succeeded
created   2027-01-02 03:04:05
metrics:
{
  "duration": 2,
  "time_in_state": {},
  "transitions": 2
}
   1  03:04:05.678  ∅ → awaiting_payment  (start)
"""


def test_ids_times_and_measurements_are_wildcards_and_ids_are_captured():
    assert readme.match(SHOW, REAL) == {
        "01a227b9-05ce-727a-afe2-21a23cef5730": "01a227bf-e104-72a4-8c66-2ac0686ba2dc"}


@pytest.mark.parametrize("change", [
    ("status    succeeded", "status    failed"),
    ("awaiting_payment  (start)", "awaiting_payment  (redrive)"),
    ("  \"transitions\": 2\n}\n", "  \"transitions\": 2\n}\nextra\n"),
    ("run       01a227bf-e104-72a4-8c66-2ac0686ba2dc", "run       not-an-id"),
    ("03:04:05.678", "03:04:05"),
])
def test_anything_else_must_be_as_shown(change):
    assert readme.match(SHOW, REAL.replace(*change)) is None


def test_a_repeated_id_must_be_the_same_value():
    readme_id, real = "cbfae458-75e7-475e-a37f-0c566d03be6a", "01a227bf-e104-72a4-8c66-2ac0686ba2dc"
    shown = [f'{{"id":"{readme_id}","run":"{readme_id}"}}']
    assert readme.match(shown, f'{{"id":"{real}","run":"{real}"}}') == {readme_id: real}
    assert readme.match(shown, f'{{"id":"{real}","run":"{real[:-1]}d"}}') is None


def test_folded_json_ellipses_and_abbreviations():
    shown = ['{"id":"cbfae458-…","status":"waiting",...,', ' "data":{"a":1},...}',
             "password Xq3…Tw (shown once)"]
    real = ('{"id":"01a227bf-e104-72a4-8c66-2ac0686ba2dc","status":"waiting","x":1,'
            '"data":{"a":1},"y":2}\npassword a3wPguEdOTBes8f6 (shown once)')
    assert readme.match(shown, real) == {}
    assert readme.match(shown, real.replace('"data":{"a":1}', '"data":{"a":2}')) is None


def test_commands_fold_on_a_backslash_and_output_follows():
    (block,) = readme.blocks("```console\n$ echo a \\\n    b\na b\n$ true\n```\n")
    found = readme.commands(block)
    assert [(c.text, c.expected) for c in found] == [("echo a \\\n    b", ["a b"]), ("true", [])]
    assert found[0].key == "echo a \\ b"
