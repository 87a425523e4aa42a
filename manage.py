#!/usr/bin/env python
"""Django's command-line utility for Async States."""
import os
import signal
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "async_states.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`show_run ID | head`): stop quietly, as a Unix tool killed by
        # SIGPIPE would, rather than with a traceback. SIGPIPE itself stays ignored (Python's
        # default), so a closed socket in the server processes is an error, not a death.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)


if __name__ == "__main__":
    main()
