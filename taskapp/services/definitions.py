"""Loading task definitions: validated, versioned and immutable once stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from engine.errors import Problem
from engine.language import task_to_dict, validate_text
from taskapp import models
from taskapp.conf import conf


def _version_conflict(source: str, name: str, version: int, existing_path: str) -> str:
    """Why a definition is refused: its version is loaded with different content."""
    where = f" (loaded from {existing_path})" if existing_path else ""
    return (f"{source}: task '{name}' version {version} is already loaded with different "
            f"content{where}; a version is immutable: raise `version` to load the change")


@dataclass(frozen=True, slots=True)
class LoadResult:
    """``status``: loaded, unchanged, refused (version conflict) or invalid."""

    status: str
    source: str
    definition: models.TaskDefinition | None = None
    problems: tuple[Problem, ...] = field(default=())
    message: str = ""


def definition_load(*, text: str, source: str, check_only: bool = False) -> LoadResult:
    """Validate ``text`` and store it as a new version unless that version exists.

    An identical source under an existing version is ``unchanged``; a different source
    under an existing version is ``refused`` (running runs keep the version they started
    with, so a version never changes). ``check_only`` validates and stores nothing.
    """
    report = validate_text(text, source, conf.reader_limits())
    if not report.ok:
        return LoadResult("invalid", source, problems=report.problems)
    task = report.task
    checksum = hashlib.sha256(text.encode()).hexdigest()
    existing = models.TaskDefinition.objects.filter(name=task.name, version=task.version).first()
    if existing is not None:
        if existing.checksum == checksum:
            return LoadResult("unchanged", source, existing, report.problems)
        conflict = _version_conflict(source, task.name, task.version, existing.source_path)
        return LoadResult("refused", source, existing, report.problems, conflict)
    if check_only:
        return LoadResult("checked", source, problems=report.problems)
    try:
        with transaction.atomic():
            row = models.TaskDefinition.objects.create(
                name=task.name, version=task.version, description=task.description,
                source=text, source_path=source, checksum=checksum,
                definition=task_to_dict(task),
            )
    except IntegrityError:  # loaded concurrently: decide again against what won
        return definition_load(text=text, source=source)
    return LoadResult("loaded", source, row, report.problems)
