"""Every ```yaml block in docs/task-language.md is a complete task that loads without errors."""

import json
import re
from pathlib import Path

import pytest

from engine.language import task_from_dict, task_to_dict, validate_text

DOC = Path(__file__).parent.parent.parent / "docs" / "task-language.md"


def yaml_examples(doc: Path = DOC) -> list[tuple[int, str]]:
    """(line of the opening fence, block text) for every ```yaml block of ``doc`` (by
    default this page)."""
    text = doc.read_text()
    return [
        (text.count("\n", 0, match.start()) + 1, match["body"])
        for match in re.finditer(r"^```yaml\n(?P<body>.*?)^```", text, re.DOTALL | re.MULTILINE)
    ]


def test_doc_has_examples():
    assert len(yaml_examples()) >= 15


def documented_connections() -> dict[str, str]:
    """The ``ASYNC_STATES_CONNECTION_*=url`` lines the doc shows a deployment setting."""
    pattern = r"^(ASYNC_STATES_CONNECTION_[A-Z0-9_]+)=(\S+)$"
    return dict(re.findall(pattern, DOC.read_text(), re.MULTILINE))


def test_doc_configures_the_connections_its_examples_name():
    assert {"ASYNC_STATES_CONNECTION_SHOP", "ASYNC_STATES_CONNECTION_CACHE"} <= set(
        documented_connections()
    )


@pytest.mark.parametrize("example", yaml_examples(), ids=lambda e: f"line{e[0]}")
def test_doc_example_loads_without_problems(example, monkeypatch):
    # As a deployment that followed the doc: its connections are configured.
    for name, url in documented_connections().items():
        monkeypatch.setenv(name, url)
    line, body = example
    report = validate_text(body, f"{DOC.name}:{line}")
    assert report.ok, "\n".join(str(p) for p in report.problems)
    assert report.warnings == (), "\n".join(str(p) for p in report.warnings)
    assert task_from_dict(json.loads(json.dumps(task_to_dict(report.task)))) == report.task
