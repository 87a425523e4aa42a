"""Delays between instruction retries and between poll attempts.

Jitter is "equal jitter": half the delay is kept, the other half drawn at random, so
retries of many runs spread out without ever collapsing to zero.
"""

from __future__ import annotations

import random
from datetime import timedelta

from engine.language.model import Backoff, RetryPolicy

_random = random.Random()


def _jittered(seconds: float, jitter: bool) -> float:
    if not jitter or seconds <= 0:
        return seconds
    half = seconds / 2
    return half + _random.uniform(0, half)


def retry_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    base = policy.initial_delay.total_seconds() * policy.factor ** (attempt - 1)
    return _jittered(min(base, policy.max_delay.total_seconds()), policy.jitter)


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
    grown = seconds * backoff.factor ** max(attempts - 1, 0)
    if backoff.max_interval is not None:
        grown = min(grown, backoff.max_interval.total_seconds())
    return _jittered(grown, backoff.jitter)
