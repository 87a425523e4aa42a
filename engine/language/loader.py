"""The task language's entry points: text or file in, a ``Report`` or a ``TaskDef`` out.

Reading YAML (``yamlnodes``), building the model (``parser``) and graph checks (``validation``)
happen here in that order; storing a parsed definition as JSON is ``serialise``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from engine.errors import Problem, Severity, SpecError
from engine.language.limits import DEFAULT_LIMITS, ReaderLimits
from engine.language.model import TaskDef
from engine.language.parser import parse_task
from engine.language.serialise import task_from_dict, task_to_dict
from engine.language.validation import validate
from engine.language.yamlnodes import MarkIndex, read_yaml, too_big

__all__ = [
    "Report",
    "decode_source",
    "read_source",
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
        return tuple(p for p in self.problems if p.severity == Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == Severity.WARNING)

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
        task, parse_problems = parse_task(root, source, limits, problems)
        problems += parse_problems
        if task is not None and not _has_errors(problems):
            problems += validate(task, MarkIndex(root, source))
    ordered = tuple(sorted(problems, key=lambda p: (p.line, p.column)))
    return Report(source, None if _has_errors(ordered) else task, ordered)


def _has_errors(problems: list[Problem] | tuple[Problem, ...]) -> bool:
    return any(p.severity == Severity.ERROR for p in problems)


def load_text(text: str, source: str = "<string>") -> TaskDef:
    """Parse a task definition that must be free of errors (warnings are allowed).

    Raises:
        SpecError: with every problem found, when there is at least one error.
    """
    report = validate_text(text, source)
    if report.task is None:
        raise SpecError(report.problems)
    return report.task


def validate_file(path: str | PathLike[str], limits: ReaderLimits = DEFAULT_LIMITS) -> Report:
    """``validate_text`` of a UTF-8 file; the source is the path as given.

    Raises:
        OSError: the file cannot be read.
    """
    text, problems = read_source(path, str(path), limits)
    if text is None:
        return Report(str(path), None, tuple(problems))
    return validate_text(text, str(path), limits)


def load_file(path: str | PathLike[str], limits: ReaderLimits = DEFAULT_LIMITS) -> TaskDef:
    """``load_text`` of a UTF-8 file; the source is the path as given.

    Raises:
        SpecError: the definition has errors.
        OSError: the file cannot be read.
    """
    report = validate_file(path, limits)
    if report.task is None:
        raise SpecError(report.problems)
    return report.task


def read_source(
    path: str | PathLike[str], source: str, limits: ReaderLimits = DEFAULT_LIMITS
) -> tuple[str | None, list[Problem]]:
    """A task file's text, read no further than one byte past ``limits.max_source_bytes``
    (a 10 GB file is refused after reading 1 MB of it).

    Returns:
        ``(text, [])``, or ``(None, [problem])`` when the file is too big or not UTF-8.

    Raises:
        OSError: the file cannot be read.
    """
    with Path(path).open("rb") as file:
        data = file.read(limits.max_source_bytes + 1)
    return decode_source(data, source, limits)


_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


def decode_source(
    data: bytes, source: str, limits: ReaderLimits = DEFAULT_LIMITS
) -> tuple[str | None, list[Problem]]:
    """Bytes to text for ``validate_text``: UTF-8 (a leading byte-order mark is allowed).

    Returns:
        ``(text, [])``, or ``(None, [problem])`` citing the first byte that is not UTF-8 by
        line and column, or the size limit.
    """
    if len(data) > limits.max_source_bytes:
        more = len(data) == limits.max_source_bytes + 1  # read_source stopped there
        return None, [Problem(source, 1, 1, "", too_big(limits, len(data), more))]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return None, [_not_utf8(data, exc.start, source)]


def _not_utf8(data: bytes, start: int, source: str) -> Problem:
    encoding = next((name for bom, name in _BOMS.items() if data.startswith(bom)), None)
    if encoding is not None:
        message = (f"the file is {encoding} (it starts with a {encoding} byte-order mark); "
                   "save it as UTF-8")
        return Problem(source, 1, 1, "", message)
    line_start = data.rfind(b"\n", 0, start) + 1
    line = data.count(b"\n", 0, start) + 1
    column = len(data[line_start:start].decode("utf-8", "replace")) + 1
    message = (f"byte 0x{data[start]:02x} is not UTF-8; task files are UTF-8 text "
               "(save the file as UTF-8)")
    return Problem(source, line, column, "", message)
