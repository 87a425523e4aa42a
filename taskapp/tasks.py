"""The only functions django-q2 workers call, by dotted path. They receive a run id only."""

from taskapp import services


def advance_run(run_id: str) -> None:
    services.run_advance(run_id=run_id)
