"""The only writers of TaskDefinition, Run, Transition and their companions.

Views, serializers, admin actions, commands, django-q2 tasks and consumers call these.
"""

from taskapp.services.definitions import DefinitionConflict, LoadResult, definition_load
from taskapp.services.errors import (
    InputInvalid,
    RunConflict,
    RunNotActive,
    RunNotFound,
    ServiceError,
    TaskNotFound,
    ValueUnstorable,
)
from taskapp.services.events import event_send
from taskapp.services.heartbeats import cluster_heartbeat, cluster_heartbeat_end
from taskapp.services.retention import PurgeReport, runs_purge
from taskapp.services.runs import (
    run_advance,
    run_cancel,
    run_redrive,
    run_start,
    runs_advance,
)
from taskapp.services.wakeups import wakeups_fire

__all__ = [
    "DefinitionConflict", "InputInvalid", "LoadResult", "RunConflict", "RunNotActive",
    "RunNotFound", "ServiceError", "TaskNotFound", "ValueUnstorable", "definition_load",
    "event_send", "run_advance", "run_cancel", "run_redrive", "run_start", "runs_advance",
    "wakeups_fire", "PurgeReport", "cluster_heartbeat", "cluster_heartbeat_end", "runs_purge",
]
