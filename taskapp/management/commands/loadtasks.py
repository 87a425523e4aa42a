"""``manage.py loadtasks [PATH ...] [--check]``: load (or only validate) task files."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from engine.errors import Severity
from engine.language import read_source
from engine.simulation.check import is_script
from taskapp import selectors
from taskapp.conf import conf
from taskapp.services import LoadResult, definition_load

PATTERNS = ("*.yaml", "*.yml")


class Command(BaseCommand):
    help = (
        "Load task definitions from YAML files; folders are searched recursively. "
        "Default: ASYNC_STATES['TASKDEFS_DIR']."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", metavar="PATH")
        parser.add_argument(
            "--check", action="store_true", help="Validate only; store nothing."
        )

    def handle(self, *args, paths, check, **options):
        files = task_files(paths or [conf.TASKDEFS_DIR])
        _require_schema()
        counts: Counter[str] = Counter()
        for path in files:
            result = self._load(path, check)
            counts[result.status] += 1
            counts["warnings"] += sum(1 for p in result.problems if p.severity == Severity.WARNING)
        bad = counts["invalid"] + counts["refused"]
        if check:
            self.stdout.write(
                f"checked {len(files)} files: {len(files) - bad} ok, {bad} with errors, "
                f"{counts['warnings']} warnings"
            )
        else:
            self.stdout.write(
                f"loaded {counts['loaded']}, unchanged {counts['unchanged']}, "
                f"refused {counts['refused']}, invalid {counts['invalid']}"
            )
        if bad:
            raise CommandError(f"{bad} of {len(files)} task file(s) have errors (above)",
                               returncode=1)

    def _load(self, path: Path, check: bool) -> LoadResult:
        source = display_path(path)
        try:
            text, problems = read_source(path, source, conf.reader_limits())
        except OSError as exc:
            self.stderr.write(f"{source}: error: cannot read: {exc}")
            return LoadResult("invalid", source)
        if text is None:
            result = LoadResult("invalid", source, problems=tuple(problems))
        else:
            result = _definition_load(text, source, check)
        for problem in result.problems:
            self.stderr.write(str(problem))
        if result.message:
            self.stderr.write(result.message)
        what = f"  ({result.definition})" if result.definition else ""
        self.stdout.write(f"{result.status:<9} {source}{what}")
        return result


def _require_schema() -> None:
    """A clear error instead of a traceback when the database is unreachable or unmigrated
    (``--check`` compares each file with the versions already loaded, so it reads it too)."""
    try:
        ready = selectors.schema_ready()
    except DatabaseError as exc:
        raise CommandError(f"cannot reach the database ({exc}); check DATABASE_URL") from exc
    if not ready:
        raise CommandError(
            "the database has no tables yet (it was never migrated): run "
            "`python manage.py migrate` first, then loadtasks again"
        )


def _definition_load(text: str, source: str, check: bool) -> LoadResult:
    try:
        return definition_load(text=text, source=source, check_only=check)
    except DatabaseError as exc:
        raise CommandError(
            f"{source}: the database refused the task definition ({exc}); if it is not fully "
            "migrated, run `python manage.py migrate` first"
        ) from exc


def task_files(paths: list[str]) -> list[Path]:
    """The YAML files named, and those under the folders named, each folder's sorted; a
    folder's simulation scripts (``*.sim.yaml``, see ``engine.simulation.check``) are not
    task files."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = {f for pattern in PATTERNS for f in path.rglob(pattern)
                     if f.is_file() and not is_script(f)}
            files.extend(sorted(found))
        elif path.is_file():
            files.append(path)
        else:
            raise CommandError(f"{name}: no such file or folder")
    return files


def display_path(path: Path) -> str:
    """Relative to the working folder when below it (``taskdefs/hello.yaml``), else as is."""
    relative = os.path.relpath(path.resolve())
    return path.as_posix() if relative.startswith("..") else relative
