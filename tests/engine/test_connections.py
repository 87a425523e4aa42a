"""Named connections: configuration, scheme checks, scrubbing, the per-process cache."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import connections
from engine.connections import Cache, ConnectionNotConfigured
from tests.engine.forking import in_child


def test_url_of_reads_the_upper_case_variable():
    env = {"ASYNC_STATES_CONNECTION_ORDERS": " amqp://u:p@h/v "}
    assert connections.url_of("orders", env) == "amqp://u:p@h/v"


@pytest.mark.parametrize("env", [{}, {"ASYNC_STATES_CONNECTION_ORDERS": "  "}])
def test_an_unset_or_empty_connection_is_a_final_error_naming_the_variable(env):
    with pytest.raises(ConnectionNotConfigured) as info:
        connections.url_of("orders", env)
    assert not info.value.retryable
    assert "connection 'orders' is not configured" in str(info.value)
    assert "ASYNC_STATES_CONNECTION_ORDERS" in str(info.value)


def test_configured_lists_names_and_schemes_only():
    env = {
        "ASYNC_STATES_CONNECTION_SHOP": "AMQPS://u:secret@h/v",
        "ASYNC_STATES_CONNECTION_EMPTY": "",
        "OTHER": "redis://x",
    }
    assert connections.configured(env) == {"shop": "amqps"}


@pytest.mark.parametrize(
    ("url", "broker", "ok"),
    [
        ("amqp://h", "amqp", True),
        ("amqps://h", "amqp", True),
        ("mqtt://h", "mqtt", True),
        ("nats://h", "nats", True),
        ("tls://h", "nats", True),
        ("rediss://h", "redis", True),
        ("redis://h", "amqp", False),
        ("h:5672", "amqp", False),
    ],
)
def test_which_scheme_serves_which_broker(url, broker, ok):
    assert connections.serves(url, broker) is ok


def test_a_scheme_that_does_not_serve_the_broker_is_a_final_error_without_the_url():
    with pytest.raises(Exception) as info:
        connections.check_serves("orders", "redis://:topsecret1@h/0", "amqp")
    assert "connection 'orders' is a redis URL, which does not serve the amqp broker" in str(
        info.value
    )
    assert "topsecret1" not in str(info.value)


def test_scrub_replaces_the_url_and_every_form_of_its_password():
    url = "amqp://guest:p%40ss%20w%2Frd@host:5672/%2F"
    text = f"cannot open {url}; login p@ss w/rd refused (p%40ss%20w%2Frd, p%40ss+w%2Frd)"
    scrubbed = connections.scrub(text, url, "connection 'shop'")
    assert "connection 'shop'" in scrubbed
    assert "p@ss" not in scrubbed and "p%40ss" not in scrubbed
    assert scrubbed.count("***") == 3, scrubbed


# A password of asterisks alone cannot be told from the mask that replaces it.
@given(st.text(min_size=1, max_size=40).filter(lambda s: s.strip() and set(s) - {"*"}))
def test_scrub_never_leaves_the_password(password):
    from urllib.parse import quote

    url = f"nats://user:{quote(password, safe='')}@127.0.0.1:4222"
    text = f"error at {url}: bad password {password}"
    assert f"bad password {password}" not in connections.scrub(text, url, "x")


def test_passwords_of_every_configured_connection():
    env = {
        "ASYNC_STATES_CONNECTION_A": "amqp://u:first-pw@h/",
        "ASYNC_STATES_CONNECTION_B": "mqtt://h:1883",
        "ASYNC_STATES_CONNECTION_C": "redis://:second-pw@h/0",
    }
    assert connections.passwords(env) == {"first-pw", "second-pw"}
    encoded = {"ASYNC_STATES_CONNECTION_A": "amqp://u:a%40b-long@h/"}
    assert connections.passwords(encoded) == {"a%40b-long", "a@b-long"}


def test_the_cache_opens_once_and_reopens_after_discard():
    opened, closed = [], []
    cache: Cache[object] = Cache(close=closed.append)

    def open_():
        opened.append(object())
        return opened[-1]

    first = cache.get("k", open_)
    assert cache.get("k", open_) is first
    cache.discard("k", object())  # not the cached one: kept
    assert cache.get("k", open_) is first
    cache.discard("k", first)
    assert closed == [first]
    assert cache.get("k", open_) is not first and len(opened) == 2


def test_concurrent_first_uses_open_one_client():
    cache: Cache[object] = Cache(close=lambda _: None)
    calls = []
    barrier = threading.Barrier(8)

    def open_():
        calls.append(1)
        return object()

    def use():
        barrier.wait()
        cache.get("k", open_)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1


def test_a_forked_child_starts_with_no_clients():
    cache: Cache[object] = Cache(close=lambda _: None)
    cache.get("k", object)
    assert in_child(lambda: len(cache) == 0 and cache.get("k", object) is not None) == 0
    assert len(cache) == 1
