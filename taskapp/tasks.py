"""The only functions django-q2 workers call, by dotted path. They receive run ids only."""

from taskapp import services


def advance_run(run_id: str) -> None:
    try:
        services.run_advance(run_id=run_id)
    finally:
        services.worker_recycle_due()


def advance_runs(run_ids: list[str]) -> int:
    """A batch of runs that came due together (``dispatch.advance_many_later``)."""
    try:
        return services.runs_advance(run_ids=run_ids)
    finally:
        services.worker_recycle_due()


def purge_runs() -> str:
    """The scheduled purge (``dispatch.schedule_purge``): the admin's policy, its batch size."""
    from taskapp.models import RetentionPolicy

    report = services.runs_purge(batch_size=RetentionPolicy.load().batch_size)
    return f"purged {report.runs} runs and {report.events} events in {report.seconds:.1f}s"
