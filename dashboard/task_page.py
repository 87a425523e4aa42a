"""What a task's page shows: the chosen version's diagram, YAML and live counts, the list of
loaded versions, and the diff of the chosen version's YAML against another (the previous one
unless ``?diff=N`` names another). Reads only, through ``dashboard.selectors``.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils import timezone

from dashboard import selectors
from dashboard.versions import MAX_DIFF_LINES, VersionDiff, version_diff
from engine.diagram import diagram_of, to_svg
from taskapp.conf import conf
from taskapp.models import TaskDefinition
from taskapp.permissions import can_simulate_tasks
from taskapp.selectors import definition_of
from taskapp.simulations import kept_scripts


def page(name: str, *, version: str = "", diff: str = "", user: Any = None) -> dict[str, Any]:
    """The page's context for ``?version=`` and ``?diff=`` (both version numbers, as given);
    ``user`` decides whether the dry-run form, and the scripts kept beside the task's file,
    are offered.

    Raises:
        Http404: no such task, or no such version for either parameter.
    """
    versions = selectors.task_versions(name)
    chosen = _pick(versions, version) or (versions[0] if versions and not version else None)
    if chosen is None:
        raise Http404("No such task or version")
    definition = selectors.task_version(chosen.pk)
    task = definition_of(definition.pk)
    diagram = diagram_of(task)
    can_simulate = can_simulate_tasks(user)
    return {
        "task_def": task,
        "since": timezone.now().isoformat(),
        "definition": definition,
        "versions": versions,
        "svg": to_svg(diagram),
        "lints": [(node.name, lint) for node in diagram.nodes for lint in node.lints],
        "states": selectors.task_state_counts(name),
        "diff": _diff(definition, versions, diff),
        "diff_wanted": diff,
        "max_diff_lines": MAX_DIFF_LINES,
        "can_simulate": can_simulate,
        "kept_scripts": kept_scripts(task=name) if can_simulate else [],
        "max_seconds": conf.SIMULATION_MAX_SECONDS,
    }


def _pick(versions: list[TaskDefinition], wanted: str) -> TaskDefinition | None:
    return next((v for v in versions if str(v.version) == wanted), None) if wanted else None


def _diff(definition: TaskDefinition, versions: list[TaskDefinition],
          wanted: str) -> VersionDiff | None:
    """Against ``wanted``, else the newest version older than ``definition`` (None for a
    first version)."""
    if wanted:
        base = _pick(versions, wanted)
        if base is None:
            raise Http404("No such version to compare with")
    else:
        base = next((v for v in versions if v.version < definition.version), None)
    if base is None or base.pk == definition.pk:
        return None
    old = selectors.task_version(base.pk)
    return version_diff(name=definition.name, old=old.version, old_source=old.source,
                        new=definition.version, new_source=definition.source)
