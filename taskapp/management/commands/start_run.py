"""``manage.py start_run TASK [--input JSON | --input-file F] [--version N]
[--idempotency-key K] [--wait [SECONDS]]``: start a run, and optionally follow it."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from engine.runs import RunStatus
from taskapp.management.commands._common import (
    dumps,
    json_file_option,
    json_option,
    transition_line,
)
from taskapp.models import Run
from taskapp.services import InputInvalid, ServiceError, run_start

POLL_SECONDS = 0.2
# A run still pending this long after its start means no cluster is picking it up.
NO_CLUSTER_HINT_SECONDS = 5.0


class Command(BaseCommand):
    help = "Start a run of TASK and print its id; with --wait, follow it until it ends."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # "resolve": our --version (of the task) replaces Django's --version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("task", metavar="TASK", help="The name of a loaded task.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--input", metavar="JSON", help="The run's input, as JSON.")
        source.add_argument("--input-file", metavar="F", help="A file holding the input as JSON.")
        parser.add_argument("--version", dest="task_version", type=int, metavar="N",
                            help="A loaded version (default: the latest).")
        parser.add_argument("--idempotency-key", metavar="K",
                            help="Starting again with the same key returns the same run.")
        parser.add_argument(
            "--wait", nargs="?", type=float, const=0.0, default=None, metavar="SECONDS",
            help="Follow the run, printing transitions, until it ends (or SECONDS pass).",
        )

    def handle(self, *args, **options):
        if options["input_file"]:
            payload = json_file_option("--input-file", options["input_file"])
        else:
            payload = json_option("--input", options["input"])
        try:
            run, created = run_start(
                task=options["task"], input=payload, version=options["task_version"],
                idempotency_key=options["idempotency_key"],
            )
        except InputInvalid as exc:
            # Every schema error, as the API returns them, not just the first.
            raise CommandError("\n  ".join([
                f"input rejected by the input_schema of task '{exc.task}':", *exc.lines()
            ])) from None
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(run.pk))
        if not created:
            self.stderr.write(f"an existing run has this idempotency key ({run.status})")
        if options["wait"] is not None:
            self._follow(run, options["wait"] or None)

    def _follow(self, run: Run, limit: float | None) -> None:
        started, seen, hinted = time.monotonic(), 0, False
        while True:
            # The run first, then its history: a run read as finished has every transition
            # committed (they commit together), so none is missed on the way out.
            run.refresh_from_db()
            for transition in run.transitions.filter(seq__gt=seen).order_by("seq"):
                self.stdout.write(transition_line(transition))
                seen = transition.seq
            if run.is_finished:
                return self._finish(run)
            waited = time.monotonic() - started
            if limit is not None and waited >= limit:
                raise CommandError(f"run {run.pk} is still {run.status} after {limit:g} s")
            if not hinted and run.status == RunStatus.PENDING and waited > NO_CLUSTER_HINT_SECONDS:
                hinted = True
                self.stderr.write("still pending: is the cluster running "
                                  "(`manage.py qcluster`, or `make run`)?")
            time.sleep(POLL_SECONDS)

    def _finish(self, run: Run) -> None:
        self.stdout.write(run.status)
        self.stdout.write(dumps(run.data))
        if run.error:
            self.stderr.write(f"error: {dumps(run.error)}")
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"run {run.pk} ended {run.status}", returncode=1)
