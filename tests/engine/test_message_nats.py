"""The message instruction on NATS (127.0.0.1:4222, JetStream on): core, JetStream, the id."""

from __future__ import annotations

import asyncio
import json
import threading

import nats
import pytest

from engine.errors import InstructionError
from engine.instructions.message import nats as nats_publisher
from engine.language.model import MessageSpec
from tests.engine.brokers import (
    NATS_URL,
    nats_js,
    publish,
    publish_once_back,
    require_port,
    unique,
    use_connection,
)
from tests.engine.forking import in_child
from tests.proxy import Proxy


@pytest.fixture
def subject():
    require_port("NATS", 4222)
    yield unique("s").replace("-", "_")
    nats_publisher._CLIENTS.close_all()


@pytest.fixture
def stream(subject):
    """A JetStream stream capturing ``subject``: ``(name, subject)``; deleted afterwards."""
    name = subject.upper()
    asyncio.run(nats_js(lambda js: js.add_stream(name=name, subjects=[subject])))
    yield name
    asyncio.run(nats_js(lambda js: js.delete_stream(name)))


class Subscriber:
    """A core NATS subscription on its own loop thread; ``get()`` the next message."""

    def __init__(self, subject: str) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client, self.sub = self._run(self._subscribe(subject))

    async def _subscribe(self, subject: str):
        client = await nats.connect(NATS_URL)
        sub = await client.subscribe(subject)
        await client.flush()
        return client, sub

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(15)

    def get(self):
        return self._run(self.sub.next_msg(timeout=10))

    def close(self) -> None:
        self._run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_core_publish_delivers_with_the_key_as_nats_msg_id(monkeypatch, subject, make_ctx):
    use_connection(monkeypatch, "bus", NATS_URL)
    subscriber = Subscriber(subject)
    spec = MessageSpec(broker="nats", connection="bus", to=subject, body={"a": [1]},
                       headers=(("source", "async-states"),))
    try:
        assert publish(spec, make_ctx(key="run-1:1:tell")) == {"message_id": "run-1:1:tell"}
        message = subscriber.get()
    finally:
        subscriber.close()
    assert json.loads(message.data) == {"a": [1]}
    assert message.headers == {"source": "async-states", "Nats-Msg-Id": "run-1:1:tell"}


def test_jetstream_publish_is_acked_and_a_repeat_is_dropped(monkeypatch, subject, stream, make_ctx):
    use_connection(monkeypatch, "bus", NATS_URL)
    spec = MessageSpec(broker="nats", connection="bus", to=subject, jetstream=True, body=7)
    ctx = make_ctx(key="run-2:1:store")
    first = publish(spec, ctx)
    again = publish(spec, ctx)  # the same attempt repeated: the same key
    assert first == {"stream": stream, "seq": 1, "duplicate": False, "message_id": "run-2:1:store"}
    assert again["duplicate"] is True and again["seq"] == 1
    info = asyncio.run(nats_js(lambda js: js.stream_info(stream)))
    assert info.state.messages == 1


def test_jetstream_without_a_stream_for_the_subject_is_a_final_error(monkeypatch, subject, ctx):
    use_connection(monkeypatch, "bus", NATS_URL)
    spec = MessageSpec(broker="nats", connection="bus", to=subject, jetstream=True, body=1)
    with pytest.raises(InstructionError) as info:
        publish(spec, ctx)
    assert (info.value.error_class, info.value.retryable) == ("error", False)
    assert "no JetStream stream captures this subject" in str(info.value)


def test_a_closed_port_is_a_retryable_connection_error(monkeypatch, closed_port, make_ctx):
    use_connection(monkeypatch, "bus", f"nats://me:n4ts-pass-word@127.0.0.1:{closed_port}")
    spec = MessageSpec(broker="nats", connection="bus", to="s", body=1)
    with pytest.raises(InstructionError) as info:
        publish(spec, make_ctx(timeout=1))
    assert (info.value.error_class, info.value.retryable) == ("connection", True)
    assert "nats connection 'bus'" in str(info.value)
    assert "n4ts-pass-word" not in str(info.value)


def test_broker_gone_then_back_reconnects(monkeypatch, subject, make_ctx):
    proxy = Proxy(4222)
    proxy.start()
    use_connection(monkeypatch, "bus", f"nats://127.0.0.1:{proxy.port}")
    subscriber = Subscriber(subject)
    ctx = make_ctx(timeout=2)
    try:
        publish(MessageSpec(broker="nats", connection="bus", to=subject, body=1), ctx)
        proxy.stop()
        with pytest.raises(InstructionError) as info:
            publish(MessageSpec(broker="nats", connection="bus", to=subject, body=2), ctx)
        assert info.value.retryable
        proxy.start()
        publish_once_back(MessageSpec(broker="nats", connection="bus", to=subject, body=3), ctx)
        received = [json.loads(subscriber.get().data)]
        while received[-1] != 3 and len(received) < 3:
            received.append(json.loads(subscriber.get().data))
    finally:
        proxy.stop()
        subscriber.close()
    # The failed attempt's message may still arrive (at least once: a consumer drops it by id).
    assert received[0] == 1 and received[-1] == 3


def test_a_body_over_the_server_max_payload_is_a_final_error(monkeypatch, subject, ctx):
    use_connection(monkeypatch, "bus", NATS_URL)
    spec = MessageSpec(broker="nats", connection="bus", to=subject, body="x" * (2 << 20))
    with pytest.raises(InstructionError) as info:
        publish(spec, ctx)
    assert (info.value.error_class, info.value.retryable) == ("error", False)
    assert "the message is too large: 2,097,154 bytes; the server accepts at most" in str(
        info.value
    )
    publish(MessageSpec(broker="nats", connection="bus", to=subject, body=1), ctx)  # still open


def test_a_forked_child_gets_its_own_event_loop_and_clients(monkeypatch, subject, ctx):
    use_connection(monkeypatch, "bus", NATS_URL)
    publish(MessageSpec(broker="nats", connection="bus", to=subject, body=1), ctx)
    assert len(nats_publisher._CLIENTS) == 1

    def child() -> bool:
        fresh = nats_publisher.LOOP._loop is None and len(nats_publisher._CLIENTS) == 0
        result = publish(MessageSpec(broker="nats", connection="bus", to=subject, body=2), ctx)
        return fresh and result == {"message_id": ctx.idempotency_key}

    assert in_child(child) == 0
