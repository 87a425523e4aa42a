"""POST /api/tasks/validate/ with hostile templates answers at once: loading a task parses its
templates and predicates and evaluates nothing (the budgets apply when a run renders them)."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TASK = """\
name: hostile
version: 1
start_state: a
states:
  a:
    instructions:
      - set: {v: "TEMPLATE"}
    transitions:
      - to: done
        when: "PREDICATE"
  done: {final: succeeded}
"""

RUNNABLE = {
    "power tower": ("{{ 10 ** (10 ** 8) }}", "10 ** (10 ** 8) > 0"),
    "padding": ("{{ 'x' | center(1000000000) }}", "('x' | center(1000000000)) != ''"),
    "repetition": ("{{ 'x' * 1000000000 }}", "'x' * 1000000000 != ''"),
    "format width": ("{{ '%0999999999d' | format(1) }}", "'{:>999999999}'.format(1) != ''"),
    "nested loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}"
                     "{% endfor %}{% endfor %}", "range(100000) | list | length > 0"),
}


def _validate(client, template: str, predicate: str):
    text = TASK.replace("TEMPLATE", template).replace("PREDICATE", predicate)
    started = time.perf_counter()
    response = client.post("/api/tasks/validate/", {"text": text}, format="json")
    return response, time.perf_counter() - started


@pytest.mark.parametrize(("template", "predicate"), RUNNABLE.values(), ids=RUNNABLE.keys())
def test_validate_never_evaluates_a_hostile_template(read_only_api, template, predicate):
    response, elapsed = _validate(read_only_api, template, predicate)
    assert response.status_code == 200 and response.json()["ok"] is True
    assert elapsed < 5.0  # generous: it parses; the same text froze the server for good


@pytest.mark.parametrize("template", [
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "{{ 1" + " + 1" * 5000 + " }}",
    "{{ 'x'" + " | upper" * 5000 + " }}", "{{ " + "9" * 5000 + " }}",
])
def test_validate_reports_a_template_too_deep_or_too_big_as_a_problem(read_only_api, template):
    response, elapsed = _validate(read_only_api, template, "true")
    assert response.status_code == 200 and response.json()["ok"] is False
    messages = [p["message"] for p in response.json()["problems"]]
    assert any("nested more than 50 levels deep" in m or "4300 digits" in m
               or "TASKFILE_MAX_TEMPLATE_CHARS" in m for m in messages), messages
    assert elapsed < 5.0
