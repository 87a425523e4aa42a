"""Layer mode's sender (dashboard/sender.py): a worker never waits for Redis, and a worker
process that ends (django-q2 recycles them) still delivers what it had queued."""

from __future__ import annotations

import asyncio
import multiprocessing
import os

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings

from dashboard import sender as sender_module
from tests.services import require_service

REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
def redis_layer():
    require_service("Redis at 127.0.0.1:6379",
                    lambda: redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    config = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                          "CONFIG": {"hosts": [REDIS_URL], "prefix": f"sender{os.getpid()}"}}}
    with override_settings(CHANNEL_LAYERS=config):
        yield get_channel_layer()


def _received(layer, channel: str) -> int:
    async def drain() -> int:
        got = 0
        while True:
            try:
                await asyncio.wait_for(layer.receive(channel), 1)
            except TimeoutError:
                return got
            got += 1
    return async_to_sync(drain)()


def _send_and_return(count: int) -> None:
    for i in range(count):
        sender_module.sender.send("sender-test", {"type": "x", "i": i})


@pytest.mark.parametrize("flush", [True, False], ids=["flushed", "finalizer-disabled"])
def test_a_worker_process_that_ends_delivers_what_it_queued(redis_layer, monkeypatch, flush):
    if not flush:  # shows what the finalizer is for: without it the end loses messages
        monkeypatch.setattr(sender_module, "Finalize", lambda *a, **k: None)
    channel = async_to_sync(redis_layer.new_channel)()
    async_to_sync(redis_layer.group_add)("sender-test", channel)
    # 80: under channels-redis' default capacity of 100 undelivered messages per channel.
    child = multiprocessing.get_context("fork").Process(target=_send_and_return, args=(80,))
    child.start()
    child.join(30)
    received = _received(redis_layer, channel)
    async_to_sync(redis_layer.group_discard)("sender-test", channel)
    if flush:
        assert received == 80
    else:
        assert received < 80
