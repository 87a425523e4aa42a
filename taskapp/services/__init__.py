"""The only writers of TaskDefinition, Run, Transition and their companions.

Views, serializers, admin actions, commands, django-q2 tasks and consumers call these.
"""

from taskapp.services.definitions import LoadResult, definition_load
from taskapp.services.errors import (
    EventTooLarge,
    InputInvalid,
    InputTooLarge,
    RunConflict,
    RunNotFound,
    ServiceError,
    TaskNotFound,
    ValueTooLarge,
    ValueUnstorable,
)
from taskapp.services.events import event_send, events_from_broker, events_rewake
from taskapp.services.heartbeats import (
    cluster_heartbeat,
    cluster_heartbeat_end,
    cluster_listeners_report,
)
from taskapp.services.retention import (
    PurgeReport,
    retention_policy_ensure,
    retention_policy_save,
    runs_purge,
)
from taskapp.services.runs import (
    run_advance,
    run_cancel,
    run_redrive,
    run_start,
    runs_advance,
)
from taskapp.services.wakeups import wakeups_fire
from taskapp.services.workers import worker_recycle_due, worker_stuck, worker_unstuck

__all__ = [
    "cluster_listeners_report",
    "events_from_broker",
    "EventTooLarge", "InputInvalid", "InputTooLarge", "ValueTooLarge",
    "LoadResult", "RunConflict",
    "RunNotFound", "ServiceError", "TaskNotFound", "definition_load", "event_send", "events_rewake",
    "run_advance", "run_cancel", "run_redrive", "run_start", "runs_advance", "wakeups_fire",
    "PurgeReport", "cluster_heartbeat", "cluster_heartbeat_end", "runs_purge",
    "retention_policy_ensure", "retention_policy_save",
    "worker_recycle_due", "worker_stuck", "worker_unstuck",
    "ValueUnstorable",
]
