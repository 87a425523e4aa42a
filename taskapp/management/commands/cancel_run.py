"""``manage.py cancel_run ID``: ask a run to stop."""

from django.core.management.base import BaseCommand, CommandError

from taskapp.services import ServiceError, run_cancel


class Command(BaseCommand):
    help = "Cancel a pending, running or waiting run."

    def add_arguments(self, parser):
        parser.add_argument("run_id", metavar="ID")

    def handle(self, *args, run_id, **options):
        try:
            run = run_cancel(run_id=run_id)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"cancel requested for run {run.pk} (now {run.status})")
