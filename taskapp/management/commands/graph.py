"""``manage.py graph TASK``: a loaded task's state diagram as SVG, Graphviz DOT or Mermaid."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from engine.diagram import FORMATS, render
from taskapp import selectors


class Command(BaseCommand):
    help = ("Draw a loaded task's state diagram: SVG (default), Graphviz DOT or Mermaid, "
            "to standard output or a file.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # ``--version N`` picks the task's version, as in the API; Django's own ``--version``
        # (print Django's) gives way.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve",
                                     **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("task", metavar="TASK")
        parser.add_argument("--version", dest="task_version", type=int, metavar="N",
                            help="the version to draw (default: the latest)")
        parser.add_argument("--format", choices=FORMATS, default="svg")
        parser.add_argument("--output", metavar="FILE", help="write here instead of stdout")

    def handle(self, *args, task, task_version, format, output, **options):
        definition = selectors.task_definition(name=task, version=task_version)
        if definition is None:
            which = f"version {task_version} of task '{task}'" if task_version else f"task '{task}'"
            raise CommandError(f"{which} is not loaded (load it with: manage.py loadtasks)")
        drawing = render(selectors.definition_of(definition.pk), format)
        if output is None:
            self.stdout.write(drawing, ending="")
            return
        try:
            Path(output).write_text(drawing, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"--output: cannot write {output}: {exc.strerror}") from None
        self.stdout.write(f"wrote {output} ({format}, {len(drawing):,} characters)")
