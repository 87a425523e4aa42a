"""POST /api/tasks/validate/ with hostile task text: a 200 with the problem, in bounded time."""

from __future__ import annotations

from pathlib import Path

import pytest

HOSTILE = Path(__file__).resolve().parents[2] / "taskdefs" / "hostile"


def _expected(path: Path) -> str:
    return path.read_text().splitlines()[0].partition(": ")[2]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["billion_laughs_9", "recursive_alias", "flow_nesting_10000",
                                  "duration_20_digits", "control_character",
                                  "integer_5000_digits"])
def test_validate_endpoint_answers_hostile_text_with_problems(api, name):
    text = (HOSTILE / f"{name}.yaml").read_text()
    response = api.post("/api/tasks/validate/", {"text": text, "source": "h.yaml"},
                        format="json")
    assert response.status_code == 200
    body = response.json()
    line_col, _, message = _expected(HOSTILE / f"{name}.yaml").partition(": ")
    first = body["problems"][0]
    assert body["ok"] is False
    assert (f"{first['line']}:{first['column']}", first["message"]) == (line_col, message)
