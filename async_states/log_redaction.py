"""A logging filter that keeps secrets out of every log line, whatever logger wrote it.

The engine stores nothing with a secret in it, but libraries log on their own: urllib3 writes
each request line, path and query included, at DEBUG ("POST /ok/<secret>?key=<secret>"), and a
traceback may quote a value. The filter redacts each record's message and traceback with
``engine.secrets.redact`` (every form of every configured secret) before any handler formats
it. The configured secrets are read from the environment once per process.
"""

from __future__ import annotations

import logging
from functools import cached_property

from engine.secrets import Secrets, redact

_FORMATTER = logging.Formatter()


class RedactSecrets(logging.Filter):
    """Configured in ``LOGGING`` with the secrets' environment prefix (``SECRETS_PREFIX``)."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    @cached_property
    def values(self) -> frozenset[str]:
        return Secrets(self.prefix).to_redact()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.values:
            return True
        try:
            self._redact(record)
        except Exception:  # a filter that raises would break the code that logged
            # A record that does not format (arguments that do not fit its message): its text
            # is withheld, since it could not be redacted.
            record.msg = f"{record.name}: a log record that did not format (text withheld)"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True

    def _redact(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        cleaned = redact(message, self.values)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.values)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.values)
