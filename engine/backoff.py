"""Delays between instruction retries and between poll attempts.

Jitter is "equal jitter": half the delay is kept, the other half drawn at random, so
retries of many runs spread out without ever collapsing to zero. The draws come from the
process's generator, or from one a caller installs for its context with
``jitter_drawn_from``: a dry run does, so that the same script gives the same times.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

from engine.language.model import Backoff, RetryPolicy

_process_draws = random.Random()
_draws: ContextVar[random.Random | None] = ContextVar("jitter_draws", default=None)


@contextmanager
def jitter_drawn_from(generator: random.Random) -> Iterator[None]:
    """Draw every jitter computed in this context (this thread) from ``generator``."""
    token = _draws.set(generator)
    try:
        yield
    finally:
        _draws.reset(token)


def _jittered(seconds: float, jitter: bool) -> float:
    if not jitter or seconds <= 0:
        return seconds
    half = seconds / 2
    return half + (_draws.get() or _process_draws).uniform(0, half)


# The longest delay ever returned, whatever the policy says: 100 years, the longest duration
# a task file may write. A delay past it could not be added to a datetime.
MAX_DELAY_SECONDS = 100 * 365.25 * 86400


def _grown(seconds: float, factor: float, steps: int, cap: float | None) -> float:
    """``seconds * factor ** steps`` capped at ``cap`` (and ``MAX_DELAY_SECONDS``) without
    overflowing: a poll backing off by 2 passes a float's range after about 1,025 attempts
    (17 h at a 60 s cap)."""
    try:
        grown = seconds * factor ** max(steps, 0)
    except OverflowError:
        grown = math.inf
    return min(grown, MAX_DELAY_SECONDS if cap is None else cap, MAX_DELAY_SECONDS)


def retry_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    base = _grown(policy.initial_delay.total_seconds(), policy.factor, attempt - 1,
                  policy.max_delay.total_seconds())
    return _jittered(base, policy.jitter)


def should_retry(policy: RetryPolicy, attempt: int, error_class: str) -> bool:
    """Whether failed attempt ``attempt`` with ``error_class`` gets another try.

    ``error`` in ``retry_on`` retries everything; ``status`` retries any unexpected status.
    """
    if attempt >= policy.max_attempts:
        return False
    allowed = set(policy.retry_on)
    if "error" in allowed or error_class in allowed:
        return True
    return "status" in allowed and error_class in {"5xx", "429", "4xx", "status"}


def poll_interval(every: timedelta, backoff: Backoff | None, attempts: int) -> float:
    """Seconds until the next poll attempt after ``attempts`` attempts so far."""
    seconds = every.total_seconds()
    if backoff is None:
        return seconds
    cap = backoff.max_interval.total_seconds() if backoff.max_interval is not None else None
    return _jittered(_grown(seconds, backoff.factor, attempts - 1, cap), backoff.jitter)
