"""``manage.py simulate TASK|FILE [--input JSON] --script FILE [--json]``: a dry run;
``manage.py simulate --check DIR``: run the scripts kept beside task files;
``manage.py simulate --explore TASK|FILE``: every reachable end and every stuck way."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from engine.errors import SpecError
from engine.language.model import TaskDef
from engine.simulation import SimulationError, parse_script
from engine.simulation.check import mismatches, scripts_in
from taskapp.management.commands._common import json_option
from taskapp.services import TaskNotFound
from taskapp.simulations import task_explore, task_for_simulation, task_simulate


class Command(BaseCommand):
    help = ("Dry run a task on a virtual clock against a script of what the world does "
            "(nothing is stored or sent), check the scripts kept beside task files, or "
            "explore every end and stuck way of a task.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("task", nargs="?", metavar="TASK|FILE",
                            help="A loaded task's name, or a task file (loaded or not).")
        parser.add_argument("--version", dest="task_version", type=int, metavar="N",
                            help="A loaded version (default: the latest).")
        parser.add_argument("--input", metavar="JSON", help="The run's input (default: the "
                            "script's).")
        parser.add_argument("--script", metavar="FILE", help="The script (YAML or JSON).")
        parser.add_argument("--check", metavar="DIR", help="Run every *.sim.yaml under DIR "
                            "against the task file beside it; fail on any mismatch.")
        parser.add_argument("--explore", action="store_true", help="Report every reachable "
                            "end and every way to get stuck, each with a script.")
        parser.add_argument("--max-states", type=int, default=1_000, metavar="N",
                            help="--explore: the most states to visit (default 1000).")
        parser.add_argument("--json", action="store_true", help="Print JSON, not text.")

    def handle(self, *args, **options):
        if options["check"]:
            return self._check(Path(options["check"]), options["json"])
        if not options["task"]:
            raise CommandError("name a TASK or FILE, or give --check DIR")
        task = _task(options["task"], options["task_version"])
        payload = json_option("--input", options["input"])
        if payload is not None and not isinstance(payload, dict):
            raise CommandError("--input: the input must be a JSON object")
        if options["explore"]:
            report = task_explore(task=task, input=payload, max_states=options["max_states"])
            self._print(report.to_json() if options["json"] else report.to_text(),
                        options["json"])
            return None
        if not options["script"]:
            raise CommandError("--script FILE is needed for a dry run (or use --explore)")
        try:
            result = task_simulate(task=task, script=_script(Path(options["script"])),
                                   input=payload)
        except SimulationError as exc:
            raise CommandError(str(exc)) from None
        self._print(result.to_json() if options["json"] else result.to_text(), options["json"])
        return None

    def _print(self, value, as_json: bool) -> None:
        self.stdout.write(json.dumps(value, indent=2, default=str) if as_json else value)

    def _check(self, folder: Path, as_json: bool) -> None:
        if not folder.is_dir():
            raise CommandError(f"--check {folder}: no such folder")
        pairings = scripts_in(folder)
        failures: dict[str, list[str]] = {}
        for pairing in pairings:
            problems = _check_one(pairing.script, pairing.task)
            if problems:
                failures[str(pairing.script)] = problems
            if not as_json:
                self.stdout.write(f"{'FAIL' if problems else 'ok  '} {pairing.script}")
        if as_json:
            self.stdout.write(json.dumps({"scripts": len(pairings), "failures": failures},
                                         indent=2))
        else:
            self.stdout.write(f"checked {len(pairings)} script(s): "
                              f"{len(pairings) - len(failures)} ok, {len(failures)} failed")
        if failures:
            lines = [f"{script}: {p}" for script, problems in failures.items() for p in problems]
            raise CommandError("\n".join(["mismatches:", *lines]), returncode=1)


def _task(name: str, version: int | None) -> TaskDef:
    path = Path(name)
    try:
        if path.is_file():
            return task_for_simulation(text=_read(path), source=str(path))
        return task_for_simulation(name=name, version=version)
    except SpecError as exc:
        raise CommandError("\n  ".join([f"{name} is not a valid task:",
                                        *map(str, exc.problems)])) from None
    except TaskNotFound as exc:
        raise CommandError(f"{exc} (nor is there a file of that name)") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot read it: {exc}") from None


def _script(path: Path):
    try:
        return parse_script(_read(path), str(path))
    except SimulationError as exc:
        raise CommandError(f"the script is not valid:\n  {exc}") from None


def _check_one(script_path: Path, task_path: Path | None) -> list[str]:
    """What is wrong with one kept script: its mismatches, or why it could not run."""
    if task_path is None:
        return [f"no task file {script_path.name.split('.', 1)[0]}.yaml beside it"]
    try:
        script = parse_script(_read(script_path), str(script_path))
        task = task_for_simulation(text=_read(task_path), source=str(task_path))
        if script.expect is None:
            return ["the script has no expect: (nothing to compare)"]
        return mismatches(script.expect, task_simulate(task=task, script=script))
    except (SimulationError, SpecError, CommandError) as exc:
        return [str(exc)]
