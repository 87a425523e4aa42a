"""Dry runs of a task on a virtual clock, and a checker that explores every race.

A dry run (``simulate``) drives the real runner, conditions, templates and predicates with
an in-memory store, a virtual clock and a scripted world: only those three are substituted,
through the runner's seams (``RunStore``, ``Clock``, ``engine.runner.outside.Outside``).
``explore`` enumerates the orders in which each state's conditions can be fulfilled and
reports every reachable end and every way to get stuck, each with a script that
reproduces it. This package knows nothing of Django: ``manage.py simulate`` and
``POST /api/tasks/simulate/`` are thin shells around it.
"""

from engine.simulation.bounds import Bound, Bounds, End
from engine.simulation.driver import simulate
from engine.simulation.errors import ScriptError, SimulationError, Unscripted
from engine.simulation.history import Simulation
from engine.simulation.script import Expect, Script, parse_script, script_from_data

__all__ = [
    "Bound", "Bounds", "End", "Expect", "Script", "ScriptError", "Simulation",
    "SimulationError", "Unscripted", "parse_script", "script_from_data", "simulate",
]
