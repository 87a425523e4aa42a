from datetime import timedelta

import pytest

from engine.language.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (30, timedelta(seconds=30)),
        (1.5, timedelta(seconds=1.5)),
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d12h", timedelta(days=2, hours=12)),
        ("0s", timedelta(0)),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("value", ["5 minutes", "1h1d", "m", "", "10x", True, None, [1], "-5s"])
def test_rejected_forms_name_the_accepted_ones(value):
    with pytest.raises(ValueError, match=r"500ms, 30s, 5m, 2h, 1d, 1h30m"):
        parse_duration(value)


def test_negative_seconds_are_refused():
    with pytest.raises(ValueError, match="negative"):
        parse_duration(-1)


@pytest.mark.parametrize("text", ["500ms", "30s", "1h30m", "2d12h", "1m30s500ms", "0s"])
def test_format_reads_back(text):
    assert format_duration(parse_duration(text)) == text


def test_backoff_never_overflows_however_many_attempts():
    from datetime import timedelta

    from engine.backoff import MAX_DELAY_SECONDS, poll_interval, retry_delay
    from engine.language.model import Backoff, RetryPolicy

    capped = Backoff(factor=2.0, max_interval=timedelta(seconds=60), jitter=False)
    assert poll_interval(timedelta(seconds=1), capped, 1100) == 60
    uncapped = Backoff(factor=1000.0, max_interval=None, jitter=False)
    assert poll_interval(timedelta(seconds=1), uncapped, 10_000) == MAX_DELAY_SECONDS
    policy = RetryPolicy(max_attempts=5000, initial_delay=timedelta(seconds=1), factor=2.0,
                         max_delay=timedelta(seconds=30), jitter=False)
    assert retry_delay(policy, 4000) == 30
