"""The only functions django-q2 workers call, by dotted path. They receive run ids only.

A task hands its runs to the worker's pool of run steps (``taskapp.steps``) and returns; it
blocks only while that pool is full. With django-q2's ``sync`` option (everything in the
caller's process) the step runs in the call instead.
"""

from django.conf import settings

from taskapp import dispatch, services, steps
from taskapp.conf import conf


def advance_run(run_id: str) -> None:
    advance_runs([run_id])


def advance_runs(run_ids: list[str]) -> int:
    """Runs to advance: one, or a batch that came due together
    (``dispatch.advance_many_later``). While the pool stays full for ``WAKE_BATCH_SECONDS``
    the rest go back to the queue, so a task never holds its worker for long: django-q2
    would kill the worker, and every step in its pool, at its task ``timeout``."""
    try:
        if settings.Q_CLUSTER.get("sync"):
            return services.runs_advance(run_ids=run_ids)
        taken = steps.steps_submit(run_ids, give_up_after=float(conf.WAKE_BATCH_SECONDS))
        if taken < len(run_ids):
            dispatch.advance_many_later(run_ids[taken:], batch=int(conf.WAKE_BATCH))
        return taken
    finally:
        services.worker_recycle_due()


def purge_runs() -> str:
    """The scheduled purge (``dispatch.schedule_purge``): the admin's policy, its batch size."""
    from taskapp.models import RetentionPolicy

    report = services.runs_purge(batch_size=RetentionPolicy.load().batch_size)
    return f"purged {report.runs} runs and {report.events} events in {report.seconds:.1f}s"
