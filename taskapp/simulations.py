"""Dry runs and the checker for Django: finds the definition (loaded, or text not yet
loaded) and runs ``engine.simulation`` with this deployment's engine settings.

Writes nothing: a simulation has its own in-memory store, so no row of real runs is
touched and nothing is sent anywhere. Commands and the API call these and format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import SpecError
from engine.language import validate_text
from engine.language.model import TaskDef
from engine.simulation import Bounds, Script, Simulation, simulate
from engine.simulation.check import scripts_in
from engine.simulation.explore import Exploration, explore
from taskapp import selectors
from taskapp.conf import conf
from taskapp.services import TaskNotFound


def task_for_simulation(*, name: str | None = None, version: int | None = None,
                        text: str | None = None, source: str = "<text>") -> TaskDef:
    """The definition to simulate: ``text`` when given (validated as ``loadtasks`` would,
    within the reader's limits), else the loaded task ``name`` (its latest version unless
    ``version``).

    Raises:
        SpecError: ``text`` is not a valid task.
        TaskNotFound: no such task or version is loaded.
    """
    if text is not None:
        report = validate_text(text, source, conf.reader_limits())
        if not report.ok or report.task is None:
            raise SpecError(report.problems)
        return report.task
    row = selectors.task_definition(name=str(name), version=version)
    if row is None:
        raise TaskNotFound(str(name), version)
    return selectors.definition_of(row.pk)


def request_bounds() -> Bounds:
    """The bounds of a dry run asked for over the web (the API and the task page alike): the
    engine's, with the wall time cut to ``SIMULATION_MAX_SECONDS`` so that a request ends."""
    return Bounds(max_wall_seconds=float(conf.SIMULATION_MAX_SECONDS))


def task_simulate(*, task: TaskDef, script: Script, input: dict[str, Any] | None = None,
                  bounds: Bounds | None = None) -> Simulation:
    """A dry run of ``task`` against ``script`` (``engine.simulation.simulate``)."""
    return simulate(task, script, input=input, bounds=bounds or Bounds(),
                    settings=conf.engine_settings())


def task_explore(*, task: TaskDef, input: dict[str, Any] | None = None,
                 max_states: int = 1_000) -> Exploration:
    """Every reachable end and stuck way of ``task`` (``engine.simulation.explore``)."""
    return explore(task, input=input, max_states=max_states)


@dataclass(frozen=True, slots=True)
class KeptScript:
    """A script kept beside a task file in ``TASKDEFS_DIR``: ``name`` is its path below that
    folder (``hello.sim.yaml``), the only handle a request may give for it."""

    name: str
    path: Path


def kept_scripts(*, task: str) -> list[KeptScript]:
    """The scripts ``manage.py simulate --check TASKDEFS_DIR`` pairs with a task file whose
    task is named ``task`` (sorted). A task file that is not valid pairs with nothing, as
    its name cannot be read."""
    folder = Path(str(conf.TASKDEFS_DIR))
    if not folder.is_dir():
        return []
    holds: dict[Path, bool] = {}
    kept = []
    for pairing in scripts_in(folder):
        if pairing.task is None:
            continue
        if pairing.task not in holds:
            holds[pairing.task] = _holds(pairing.task, task)
        if holds[pairing.task]:
            kept.append(KeptScript(pairing.script.relative_to(folder).as_posix(), pairing.script))
    return kept


def _holds(path: Path, task: str) -> bool:
    """Whether the task file at ``path`` is valid and holds ``task``. Only a file whose text
    names it is validated: validating all 7 paired files of taskdefs/ took 35 ms a page
    view, the one to three that name a task about 10 ms."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if task not in text:
        return False
    report = validate_text(text, str(path), conf.reader_limits())
    return report.ok and report.task is not None and report.task.name == task
