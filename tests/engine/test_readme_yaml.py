"""Every ```yaml block in README.md is a complete task that loads without problems, and the
first one is taskdefs/hello.yaml itself (the README shows that file's run right below)."""

from pathlib import Path

import pytest

from engine.language import validate_text
from tests import readme

HELLO = Path(__file__).resolve().parents[2] / "taskdefs" / "hello.yaml"


def yaml_blocks() -> list[readme.Block]:
    return [b for b in readme.blocks() if b.lang == "yaml"]


def test_the_first_yaml_block_is_the_hello_task_file():
    assert yaml_blocks()[0].body == HELLO.read_text(encoding="utf-8")


@pytest.mark.parametrize("block", yaml_blocks(), ids=lambda b: f"line{b.line}")
def test_readme_yaml_loads_without_problems(block):
    report = validate_text(block.body, f"README.md:{block.line}")
    assert report.ok, "\n".join(str(p) for p in report.problems)
    assert report.warnings == (), "\n".join(str(p) for p in report.warnings)
