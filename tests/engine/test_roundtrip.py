"""A parsed definition survives JSON storage: task_from_dict(task_to_dict(t)) == t.

The docs' examples are round-tripped in test_docs_examples.py."""

import json
from pathlib import Path

import pytest

from engine.language import load_file, task_from_dict, task_to_dict
from engine.simulation.check import is_script

ROOT = Path(__file__).parent.parent.parent
FILES = sorted(p for p in (ROOT / "taskdefs").glob("*.yaml") if not is_script(p)) + sorted(
    (ROOT / "tests/taskdefs/valid").glob("*.yaml")
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_file_round_trips_through_json(path):
    task = load_file(path)
    stored = json.loads(json.dumps(task_to_dict(task)))
    again = task_from_dict(stored)
    assert again == task
    assert again.source == str(path)
    assert [s.mark for s in again.states] == [s.mark for s in task.states]


def test_durations_are_stored_as_seconds():
    task = load_file(ROOT / "taskdefs/order_fulfilment.yaml")
    stored = task_to_dict(task)
    assert stored["deadline"] == 7 * 86400
    assert stored["max_global_transition_timeout"] == 3600.0
