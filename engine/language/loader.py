"""The task language's entry points: text or file in, a ``Report`` or a ``TaskDef`` out.

Reading YAML (``yamlnodes``), building the model (``parser``) and graph checks (``validation``)
happen here in that order; storing a parsed definition as JSON is ``serialise``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from engine.errors import Problem, SpecError
from engine.language.limits import DEFAULT_LIMITS, ReaderLimits
from engine.language.model import TaskDef
from engine.language.parser import parse_task
from engine.language.serialise import task_from_dict, task_to_dict
from engine.language.validation import validate
from engine.language.yamlnodes import MarkIndex, read_yaml

__all__ = [
    "Report",
    "load_file",
    "load_text",
    "task_from_dict",
    "task_to_dict",
    "validate_file",
    "validate_text",
]


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of validating one task definition.

    ``task`` is ``None`` when any error was found; ``problems`` holds errors and warnings
    sorted by line, then column.
    """

    source: str
    task: TaskDef | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_text(
    text: str, source: str = "<string>", limits: ReaderLimits = DEFAULT_LIMITS
) -> Report:
    """Parse and check a task definition, collecting every problem.

    Any text ends here in bounded time and memory: what ``limits`` refuses is a problem, as
    is every malformed or out-of-range value; nothing else is raised.

    Args:
        text: the YAML source of one task.
        source: the file name or label used in marks and messages.
        limits: the reader's bounds (size, depth, nodes, aliases, lengths, counts).

    Returns:
        A ``Report``; graph checks run only when the document parsed without errors.
    """
    root, problems = read_yaml(text, source, limits)
    task = None
    if root is not None:
        task, parse_problems = parse_task(root, source, limits)
        problems += parse_problems
        if task is not None and not _has_errors(problems):
            problems += validate(task, MarkIndex(root, source))
    ordered = tuple(sorted(problems, key=lambda p: (p.line, p.column)))
    return Report(source, None if _has_errors(ordered) else task, ordered)


def _has_errors(problems: list[Problem] | tuple[Problem, ...]) -> bool:
    return any(p.severity == "error" for p in problems)


def load_text(text: str, source: str = "<string>") -> TaskDef:
    """Parse a task definition that must be free of errors (warnings are allowed).

    Raises:
        SpecError: with every problem found, when there is at least one error.
    """
    report = validate_text(text, source)
    if report.task is None:
        raise SpecError(report.problems)
    return report.task


def validate_file(path: str | PathLike[str]) -> Report:
    """``validate_text`` of a UTF-8 file; the source is the path as given."""
    return validate_text(Path(path).read_text(encoding="utf-8"), str(path))


def load_file(path: str | PathLike[str]) -> TaskDef:
    """``load_text`` of a UTF-8 file; the source is the path as given.

    Raises:
        SpecError: the definition has errors.
        OSError: the file cannot be read.
    """
    return load_text(Path(path).read_text(encoding="utf-8"), str(path))
