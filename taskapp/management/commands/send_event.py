"""``manage.py send_event NAME [--run ID | --correlation VALUE] [--data JSON] [--id KEY]
[--ttl SECONDS]``: send an event to one run, or to the runs waiting on a correlation."""

from django.core.management.base import BaseCommand, CommandError

from taskapp.management.commands._common import json_option
from taskapp.services import ServiceError, event_send


class Command(BaseCommand):
    help = "Send the event NAME to a run (--run) or by correlation value (--correlation)."

    def add_arguments(self, parser):
        parser.add_argument("name", metavar="NAME")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--run", metavar="ID", help="The id of the run the event is for.")
        target.add_argument("--correlation", metavar="VALUE",
                            help="Runs subscribed with this value get it.")
        parser.add_argument("--data", metavar="JSON", help="The event's payload, as JSON.")
        parser.add_argument("--id", dest="key", help="A key: an event with a seen key is ignored.")
        parser.add_argument("--ttl", type=float, metavar="SECONDS",
                            help="Seconds the event is kept for late runs.")

    def handle(self, *args, name, run, correlation, data, key, ttl, **options):
        try:
            event, created = event_send(
                name=name, payload=json_option("--data", data), key=key, run_id=run,
                correlation=correlation, ttl=ttl,
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        note = "sent" if created else "already sent (same --id); ignored"
        self.stdout.write(f"event {event.pk} '{event.name}' {note}")
