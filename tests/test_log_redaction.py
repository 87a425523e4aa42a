"""The logging filter: no form of a configured secret reaches a log line, from any logger."""

from __future__ import annotations

import base64
import io
import logging
from urllib.parse import quote

from async_states.log_redaction import RedactSecrets

SECRET = "l0g/Secret+value"


def _logged(monkeypatch, emit) -> str:
    monkeypatch.setenv("TEST_LOG_SECRET_A", SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets("TEST_LOG_SECRET_"))
    logger = logging.getLogger("tests.log_redaction")
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "propagate", False)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_messages_arguments_and_tracebacks_are_redacted(monkeypatch):
    def emit(logger):
        logger.warning("GET /x/%s?k=%s", quote(SECRET, safe=""), SECRET.upper())
        try:
            raise ValueError(f"bad token {base64.b64encode(SECRET.encode()).decode()}")
        except ValueError:
            logger.exception("failed for %r", {"token": SECRET})

    text = _logged(monkeypatch, emit)
    assert text.count("***") == 4
    assert "GET /x/***?k=***" in text and "ValueError: bad token ***" in text
    for form in (SECRET, SECRET.upper(), quote(SECRET, safe=""), SECRET.lower()):
        assert form not in text


def test_lines_without_secrets_are_untouched(monkeypatch):
    text = _logged(monkeypatch, lambda logger: logger.warning("run %s moved %d", "r-1", 3))
    assert text == "run r-1 moved 3\n"


def test_a_record_that_does_not_format_is_withheld_not_raised(monkeypatch):
    text = _logged(monkeypatch, lambda logger: logger.warning("%s and %s", SECRET))
    assert text == "tests.log_redaction: a log record that did not format (text withheld)\n"
