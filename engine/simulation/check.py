"""Scripts kept beside task files, and comparing a dry run with what its script expects.

The convention: a script for the task file ``orders.yaml`` is any file in the same folder
named ``orders.sim.yaml`` or ``orders.<label>.sim.yaml`` (``.yml`` and ``.json`` too), with
an ``expect:`` of the outcome. ``loadtasks`` skips these files (``is_script``), so a folder
of tasks and their scripts loads as before; ``manage.py simulate --check DIR`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.simulation.history import Simulation
from engine.simulation.script import Expect

SCRIPT_SUFFIXES = (".sim.yaml", ".sim.yml", ".sim.json")
TASK_SUFFIXES = (".yaml", ".yml")


def is_script(path: Path) -> bool:
    """Whether ``path`` is a simulation script rather than a task file."""
    return path.name.endswith(SCRIPT_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Pairing:
    script: Path
    task: Path | None  # None: no task file of that name beside the script


def scripts_in(folder: Path) -> list[Pairing]:
    """Every script under ``folder`` (recursively, sorted) with the task file it tests."""
    found = sorted(p for suffix in SCRIPT_SUFFIXES for p in folder.rglob(f"*{suffix}")
                   if p.is_file())
    return [Pairing(path, _task_of(path)) for path in found]


def _task_of(script: Path) -> Path | None:
    stem = script.name.split(".", 1)[0]
    for suffix in TASK_SUFFIXES:
        candidate = script.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def mismatches(expect: Expect, result: Simulation) -> list[str]:
    """What differs between ``expect`` and the dry run's outcome (empty: it matches)."""
    found = []
    if expect.status is not None and result.status != expect.status:
        found.append(f"status: expected {expect.status}, got {result.status} "
                     f"({result.message})")
    if expect.state is not None and result.state != expect.state:
        found.append(f"state: expected {expect.state}, got {result.state}")
    error_code = (result.error or {}).get("code")
    if expect.error is not None and error_code != expect.error:
        found.append(f"error: expected {expect.error}, got {error_code}")
    if expect.data is not None:
        found.extend(_data_mismatches(expect.data, result.data, "data"))
    return found


def _data_mismatches(expected: dict[str, Any], actual: Any, path: str) -> list[str]:
    found = []
    for key, value in expected.items():
        where = f"{path}.{key}"
        if not isinstance(actual, dict) or key not in actual:
            found.append(f"{where}: expected {value!r}, missing")
        elif isinstance(value, dict) and isinstance(actual[key], dict):
            found.extend(_data_mismatches(value, actual[key], where))
        elif actual[key] != value:
            found.append(f"{where}: expected {value!r}, got {actual[key]!r}")
    return found
