"""``manage.py show_run ID``: a run's status, data, error, metrics and history."""

from django.core.management.base import BaseCommand

from taskapp.management.commands._common import clock, dumps, find_run, transition_line


class Command(BaseCommand):
    help = "Show a run: status, state, data, error, metrics, transitions and attempts."

    def add_arguments(self, parser):
        parser.add_argument("run_id", metavar="ID")

    def handle(self, *args, run_id, **options):
        run = find_run(run_id)
        out = self.stdout.write
        out(f"run       {run.pk}")
        out(f"task      {run.task_name} v{run.task_version}")
        out(f"status    {run.status}")
        out(f"state     {run.state or '–'}")
        out(f"created   {run.created_at:%Y-%m-%d %H:%M:%S}")
        if run.finished_at:
            out(f"finished  {run.finished_at:%Y-%m-%d %H:%M:%S}")
        for label, value in (("input", run.input), ("data", run.data),
                             ("error", run.error), ("metrics", run.metrics)):
            if value:
                out(f"{label}:\n{dumps(value)}")
        out("transitions:")
        for transition in run.transitions.order_by("seq"):
            out(f"{transition.seq:>4}{transition_line(transition)}")
        attempts = run.attempts.order_by("started_at", "id")
        if attempts:
            out("attempts:")
        for a in attempts:
            result = "ok" if a.ok else f"failed: {a.error_class} {a.error}".rstrip()
            out(f"  {clock(a.started_at)}  {a.state}.{a.instruction} ({a.kind}) "
                f"attempt {a.attempt}  {a.duration * 1000:.0f} ms  {result}")
