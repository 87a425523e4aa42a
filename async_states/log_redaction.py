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
        return True
