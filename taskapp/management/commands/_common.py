"""What the run and event commands share: parsing JSON options and printing runs.

Not a command (Django skips modules whose name starts with an underscore).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils import timezone

from taskapp.models import Run, Transition
from taskapp.services import RunNotFound


def json_option(option: str, text: str | None) -> Any:
    """``text`` parsed as JSON; a CommandError naming ``option`` and the reason otherwise."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option}: not valid JSON: {exc}") from None


def json_file_option(option: str, path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{option}: cannot read {path}: {exc.strerror}") from None
    return json_option(f"{option} {path}", text)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def clock(at) -> str:
    """``12:00:01.234`` in the current time zone."""
    return timezone.localtime(at).strftime("%H:%M:%S.%f")[:-3]


def transition_line(t: Transition) -> str:
    """``  12:00:01.234  greet → waiting  (condition: when)``"""
    why = f"{t.trigger}: {t.condition_kind}" if t.condition_kind else t.trigger
    return f"  {clock(t.at)}  {t.from_state or '∅'} → {t.to_state or '∅'}  ({why})"


def find_run(run_id: str) -> Run:
    """The run, or a CommandError with the service layer's "does not exist" message."""
    try:
        return Run.objects.get(pk=run_id)
    except (Run.DoesNotExist, ValidationError):
        raise CommandError(str(RunNotFound(run_id))) from None
