"""``manage.py purge_runs``: delete finished runs the retention policy no longer keeps."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from engine.language import parse_duration
from taskapp.models import RetentionPolicy
from taskapp.services import PurgeReport, runs_purge
from taskapp.services.retention import FINISHED_STATUSES


class Command(BaseCommand):
    help = ("Delete finished runs (with their history) that the retention policy no longer "
            "keeps. Unfinished runs are never touched.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")
        parser.add_argument("--older-than", metavar="DURATION",
                            help="Instead of the policy: every finished run that finished "
                                 "longer ago than this (30d, 12h, seconds).")
        parser.add_argument("--task", help="Only runs of this task.")
        parser.add_argument("--status", action="append", choices=FINISHED_STATUSES,
                            help="Only runs with this status (repeatable).")
        parser.add_argument("--batch-size", type=int, help="Runs per transaction "
                            "(default: the policy's).")

    def handle(self, *args, **options):
        older_than = self._duration(options["older_than"])
        batch = options["batch_size"] or RetentionPolicy.load().batch_size
        try:
            report = runs_purge(
                task=options["task"], statuses=options["status"], older_than=older_than,
                batch_size=batch, dry_run=options["dry_run"], progress=self._progress,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self._summary(report)

    def _duration(self, text):
        if text is None:
            return None
        try:
            return parse_duration(float(text) if text.replace(".", "", 1).isdigit() else text)
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from None

    def _progress(self, report: PurgeReport) -> None:
        self.stdout.write(f"  batch {report.batches}: {report.runs} of {report.planned} runs "
                          "removed")

    def _summary(self, report: PurgeReport) -> None:
        verb = "would remove" if report.dry_run else "removed"
        runs = report.planned if report.dry_run else report.runs
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {runs} finished run(s)"
            + ("" if report.dry_run else
               f" in {report.batches} batch(es) and {report.events} expired event(s)")
            + f" in {report.seconds:.2f}s"))
        for task, count in sorted(report.by_task.items()):
            self.stdout.write(f"  {task}: {count}")
        for status, count in sorted(report.by_status.items()):
            self.stdout.write(f"  {status}: {count}")
