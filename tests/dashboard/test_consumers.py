"""The dashboard's websocket (ws/runs/): who may connect, and how a run's change reaches a
signed-in browser in each push mode — through the channel layer (``run_changed`` → receiver
→ ``group_send``, on channels-redis) and through daphne's poller (the in-memory layer).

The tests are synchronous and drive the consumer with ``async_to_sync``: thread-sensitive
database calls (``database_sync_to_async``) then run on the test's own thread. The database
is transactional because the consumer closes old connections around its queries.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings
from django.utils import timezone

from async_states.settings import redis_channel_layer
from dashboard.hub import hub
from taskapp.signals import run_changed
from tests.services import require_service

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")
HOST = (b"host", b"127.0.0.1")  # the page's own origin: the same scheme, host and port
REDIS_URL = "redis://127.0.0.1:6379/11"
WAIT = 5  # seconds: the poller looks every 0.5 s


def application():
    from async_states.asgi import application

    return application


@pytest.fixture
def session_cookie(django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def communicator(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application(), "/ws/runs/", headers=[HOST, *headers])


async def connected(cookie) -> WebsocketCommunicator:
    socket = communicator(ORIGIN, cookie)
    ok, _ = await socket.connect()
    assert ok
    assert (await socket.receive_json_from(WAIT))["type"] == "hello"
    return socket


async def next_run(socket: WebsocketCommunicator, **expected) -> dict:
    """The next ``run`` message matching ``expected`` (skipping counts and others)."""
    while True:
        message = await socket.receive_json_from(WAIT)
        if message["type"] == "run" and all(message[k] == v for k, v in expected.items()):
            return message


def start_and_step(task: str = "greeter") -> str:
    from taskapp.services import run_advance, run_start

    run, _ = run_start(task=task, input={"name": "Ada"})
    run_advance(run_id=run.pk)
    return str(run.pk)


# ---------------------------------------------------------------------------- who


def test_anonymous_connection_is_closed_with_4401():
    async def scenario():
        socket = communicator(ORIGIN)
        ok, _ = await socket.connect()
        assert ok  # accepted, then closed with a code the page understands
        assert await socket.receive_output(WAIT) == {"type": "websocket.close", "code": 4401}
        assert not hub.listeners

    async_to_sync(scenario)()


def test_connection_without_origin_is_refused(session_cookie):
    async def scenario():
        ok, _ = await communicator(session_cookie).connect()
        assert not ok

    async_to_sync(scenario)()


# ---------------------------------------------------------------------------- poll mode


def test_poller_pushes_a_step_committed_after_the_client_connected(
        session_cookie, greeter, no_dispatch):
    greeter()

    async def scenario():
        socket = await connected(session_cookie)
        run_id = await sync_to_async(start_and_step)()
        message = await next_run(socket, id=run_id, status="waiting")
        assert (message["task"], message["version"], message["state"]) == ("greeter", 1,
                                                                          "resting")
        assert [(t["seq"], t["from_state"], t["to_state"]) for t in message["transitions"]] == [
            (1, "", "greet"), (2, "greet", "resting")]
        counts = await socket.receive_json_from(WAIT)
        assert counts["type"] == "counts" and counts["status"]["waiting"] == 1
        assert counts["states"]["greeter"] == [{"status": "waiting", "state": "resting", "n": 1}]
        await socket.disconnect()

    async_to_sync(scenario)()


def test_the_poller_stops_when_the_last_client_leaves(session_cookie):
    async def scenario():
        first, second = await connected(session_cookie), await connected(session_cookie)
        assert hub.running and len(hub.listeners) == 2
        task = hub.task
        await first.disconnect()
        assert hub.running
        await second.disconnect()
        assert not hub.running and hub.task is None and not hub.listeners
        with pytest.raises(BaseException):  # noqa: B017 - cancelled, whatever the class
            await task
        assert task.cancelled()

    async_to_sync(scenario)()


def test_catch_up_sends_runs_changed_since_the_page_was_rendered(
        session_cookie, greeter, no_dispatch):
    greeter()
    rendered = timezone.now()
    run_id = start_and_step()  # changed between the page's render and the connection

    async def scenario():
        socket = await connected(session_cookie)
        await socket.send_json_to({"type": "since", "at": rendered.isoformat()})
        message = await next_run(socket, id=run_id)
        assert message["status"] == "waiting"
        await socket.disconnect()

    async_to_sync(scenario)()


def test_watching_a_run_sends_only_it_with_the_transitions_after_the_given_seq(
        session_cookie, greeter, no_dispatch):
    greeter()
    watched = start_and_step()

    async def scenario():
        socket = await connected(session_cookie)
        await socket.send_json_to({"type": "watch", "run": watched, "after": 1})
        first = await next_run(socket)
        assert first["id"] == watched
        assert [t["seq"] for t in first["transitions"]] == [2]
        await sync_to_async(start_and_step)()  # another run: not for this page
        assert await socket.receive_nothing(1.5)
        await socket.disconnect()

    async_to_sync(scenario)()


# ---------------------------------------------------------------------------- layer mode


def redis_layer() -> dict:
    """The project's own layer configuration, on a Redis database and prefix of the test's."""
    return {"default": redis_channel_layer(REDIS_URL, prefix=f"test{os.getpid()}")}


def _needs_redis() -> None:
    require_service("Redis at 127.0.0.1:6379",
                    lambda: redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())


def test_run_changed_signal_reaches_the_client_through_the_redis_layer(session_cookie):
    _needs_redis()
    run_id = str(uuid.uuid4())
    now = timezone.now()
    payload = {"run_id": run_id, "task_name": "hello", "task_version": 3, "status": "waiting",
               "state": "pause", "created_at": now, "updated_at": now, "finished_at": None,
               "transitions": [{"seq": 2, "from_state": "greeting", "to_state": "pause",
                                "trigger": "condition", "condition_kind": "always", "at": now,
                                "time_in_state": 0.01}]}

    async def scenario():
        socket = await connected(session_cookie)
        await sync_to_async(run_changed.send)(sender=None, **payload)
        message = await next_run(socket, id=run_id)
        assert message == {
            "type": "run", "id": run_id, "task": "hello", "version": 3, "status": "waiting",
            "state": "pause", "state_entered_at": now.isoformat(),
            "created_at": now.isoformat(), "updated_at": now.isoformat(), "finished_at": None,
            "transitions": [{"seq": 2, "from_state": "greeting", "to_state": "pause",
                             "trigger": "condition", "condition_kind": "always",
                             "at": now.isoformat(), "time_in_state": 0.01}]}
        assert hub.looks == 0  # layer mode: no polling
        await socket.disconnect()

    with override_settings(CHANNEL_LAYERS=redis_layer()):
        async_to_sync(scenario)()


def test_engine_commit_sends_run_changed_with_what_it_wrote(greeter, no_dispatch):
    greeter()
    heard = []

    def receiver(sender, **payload):
        heard.append(payload)

    run_changed.connect(receiver)
    try:
        run_id = start_and_step()
    finally:
        run_changed.disconnect(receiver)
    created, stepped = heard
    assert (created["run_id"], created["status"], created["transitions"]) == (
        run_id, "pending", [])
    assert (stepped["status"], stepped["state"]) == ("waiting", "resting")
    assert [(t["seq"], t["to_state"]) for t in stepped["transitions"]] == [(1, "greet"),
                                                                          (2, "resting")]
    from taskapp.models import Run

    assert stepped["updated_at"] == Run.objects.get(pk=run_id).updated_at


def test_catch_up_of_too_many_runs_asks_the_page_to_reload(session_cookie, monkeypatch,
                                                           greeter, no_dispatch):
    from dashboard import consumers

    monkeypatch.setattr(consumers, "CATCH_UP_LIMIT", 2)
    greeter()
    rendered = timezone.now()
    for _ in range(2):
        start_and_step()

    async def scenario():
        socket = await connected(session_cookie)
        await socket.send_json_to({"type": "since", "at": rendered.isoformat()})
        assert (await socket.receive_json_from(WAIT)) == {"type": "reload"}
        await socket.disconnect()

    async_to_sync(scenario)()


def test_an_idle_client_stays_connected_through_the_redis_layer(session_cookie):
    """redis-py 8's default 5 s read timeout once killed idle websockets (1011) after ~5 s."""
    _needs_redis()
    run_id = str(uuid.uuid4())
    now = timezone.now()

    async def scenario():
        socket = await connected(session_cookie)
        await asyncio.sleep(7)  # longer than channels-redis's 5 s blocking pop
        await sync_to_async(run_changed.send)(
            sender=None, run_id=run_id, task_name="hello", task_version=1, status="waiting",
            state="pause", created_at=now, updated_at=now, finished_at=None, transitions=[])
        assert (await next_run(socket, id=run_id))["id"] == run_id
        await socket.disconnect()

    with override_settings(CHANNEL_LAYERS=redis_layer()):
        async_to_sync(scenario)()


def test_counts_are_sent_on_request_at_most_once_a_second_per_connection(
        session_cookie, greeter, no_dispatch):
    greeter()
    start_and_step()

    async def scenario():
        socket = await connected(session_cookie)
        await socket.send_json_to({"type": "counts"})
        message = await socket.receive_json_from(WAIT)
        assert message["type"] == "counts" and message["status"]["waiting"] == 1
        assert {"status": "waiting", "state": "resting", "n": 1} in message["states"]["greeter"]
        await socket.send_json_to({"type": "counts"})  # too soon: ignored
        assert await socket.receive_nothing(0.3)
        await socket.disconnect()

    async_to_sync(scenario)()


def test_the_channel_layer_is_named_for_the_cluster():
    """Two deployments (or a test and a bench) on one Redis database share no group."""
    from django.conf import settings

    config = redis_channel_layer("redis://127.0.0.1:6379/0")["CONFIG"]
    assert config["prefix"] == f"asgi:{settings.Q_CLUSTER['name']}"
