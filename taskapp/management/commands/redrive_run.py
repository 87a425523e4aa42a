"""``manage.py redrive_run ID [--state S]``: put a failed, timed-out or cancelled run back
to work."""

from django.core.management.base import BaseCommand, CommandError

from taskapp.services import ServiceError, run_redrive


class Command(BaseCommand):
    help = "Redrive a failed, timed-out or cancelled run from where it stopped (or --state)."

    def add_arguments(self, parser):
        parser.add_argument("run_id", metavar="ID")
        parser.add_argument("--state", help="The state to resume in (default: where it stopped).")

    def handle(self, *args, run_id, state, **options):
        try:
            run = run_redrive(run_id=run_id, state=state)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"run {run.pk} redriven: {run.status} in {run.state}")
