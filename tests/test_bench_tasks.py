"""The benchmark's tasks can all live in one database: ``make bench`` runs every scenario in
one scratch database, and a scenario whose task shares a name and version with another's
but not its text is refused at load (``definition_load`` says ``refused``), failing that
scenario only when the whole suite runs. Each module-level task text of ``bench/`` must be
a valid task, and a name and version must mean one text."""

from __future__ import annotations

import importlib
import pkgutil
import re

import bench.scenarios
from engine.language import validate_text


def bench_tasks() -> list[tuple[str, str]]:
    """(where, text) for every module-level string of ``bench.scenarios`` that is a task (not
    a pattern a scenario fills in, whose name is a placeholder)."""
    found = []
    for module in pkgutil.iter_modules(bench.scenarios.__path__):
        loaded = importlib.import_module(f"bench.scenarios.{module.name}")
        for attribute, value in vars(loaded).items():
            if isinstance(value, str) and "start_state:" in value and re.search(
                    r"^name: [a-z][a-z0-9_]*$", value, re.MULTILINE):
                found.append((f"{module.name}.{attribute}", value))
    return found


def test_the_bench_has_tasks():
    assert len(bench_tasks()) >= 8


def test_every_bench_task_is_valid_and_a_name_and_version_mean_one_text():
    texts: dict[tuple[str, int], tuple[str, str]] = {}
    for where, text in bench_tasks():
        report = validate_text(text, where)
        assert report.ok, (where, [str(p) for p in report.problems])
        key = (report.task.name, report.task.version)
        if key in texts and texts[key][1] != text:
            raise AssertionError(f"{where} and {texts[key][0]} are both {key[0]} version "
                                 f"{key[1]} with different texts: the second is refused")
        texts.setdefault(key, (where, text))
