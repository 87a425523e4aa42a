"""Dashboard push latency: a transition committed by a cluster worker → the ``run`` message
received by a websocket client of daphne (``ws/runs/``), in both push modes
(``dashboard/push.py``):

- ``layer``: channels-redis; the worker's ``run_changed`` receiver sends to the ``runs`` group.
  Needs the Redis broker (``REDIS_URL`` sets the broker and the channel layer together).
- ``poll``: daphne with the in-memory layer (``REDIS_URL`` empty for daphne only); its poller
  reads changed runs every 0.5 s.

Runs of ``timed`` are parked first, then their timers fire at a steady rate; each firing is
one commit with one transition. Latency = the client's receive time minus the message's
``updated_at`` (stamped in the worker just before the commit; one machine, one clock).

The client is a minimal asyncio websocket listener (below), authenticated by a session
cookie, with an ``Origin`` header as a browser sends (the origin check refuses websockets
without one).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
from datetime import datetime
from urllib.parse import urlparse

from bench.harness import Cluster, WebServer, repeat, reset_runs, summary, wait_until
from bench.scenarios.common import finished, service_start

UNITS = {"p50_ms": "ms", "p99_ms": "ms", "max_ms": "ms", "missed": "messages"}


def run(suite) -> None:
    count = suite.pick(quick=40, full=300)
    rate = 20.0
    scenario = suite.report.scenario(
        "dashboard_push", "Dashboard push: transition committed → websocket message",
        workers=2, reps=suite.reps, transitions=count, rate_per_s=rate, broker=suite.broker,
        measured="client receive time minus the message's updated_at (set at commit)")
    with Cluster(2, **suite.env):
        for mode, web_env in _modes(suite):
            case = f"{mode}: transition → websocket message"
            if web_env is None:
                suite.report.unavailable(scenario, case, "p99_ms",
                                         "skipped: needs the Redis broker (--broker redis)")
                continue
            with WebServer(**web_env) as server:
                stats = repeat(suite.reps, lambda: _measure(suite, server.url, count, rate))
            suite.report.add(scenario, case, stats, UNITS)


def _modes(suite):
    """(mode, daphne's environment); None when the mode cannot run with this suite."""
    layer = {**suite.env} if suite.redis_url else None
    return [("layer", layer), ("poll", {**suite.env, "REDIS_URL": ""})]


def _measure(suite, base_url: str, count: int, rate: float) -> dict[str, float]:
    from taskapp import models

    reset_runs(suite.redis_url)
    client = PushClient(base_url, _session_cookie())
    client.start()
    try:
        first_due = time.time() + 2 + count * 0.02
        ids = [service_start("timed", {"due": first_due + i / rate}) for i in range(count)]
        finished(ids, first_due - time.time() + count / rate + 120)
        fired = models.Transition.objects.filter(to_state="fired", run_id__in=ids).count()
        wait_until(lambda: len(client.fired()) >= fired, 10, every=0.1)
    finally:
        client.stop()
    latencies = [(received - _epoch(message["updated_at"])) * 1000
                 for received, message in client.fired()]
    s = summary(latencies)
    return {"p50_ms": s["p50"], "p99_ms": s["p99"], "max_ms": s["max"],
            "missed": fired - len(latencies)}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _session_cookie() -> str:
    """A signed-in session of the superuser ``bench`` (Django's test client logs in)."""
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.invalid", None)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class PushClient:
    """A websocket client on its own thread and event loop, keeping (receive time, message)
    for every ``run`` message."""

    def __init__(self, base_url: str, session: str):
        self.base_url, self.session = base_url, session
        self.received: list[tuple[float, dict]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.listening: asyncio.Task | None = None

    def start(self) -> None:
        self.thread.start()
        ready = threading.Event()
        future = asyncio.run_coroutine_threadsafe(self._listen(ready), self.loop)
        if not ready.wait(30):
            raise RuntimeError(f"the dashboard websocket did not say hello: {future}")

    def stop(self) -> None:
        async def shutdown() -> None:
            if self.listening is not None:
                self.listening.cancel()
                await asyncio.wait([self.listening])

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self) -> None:
        self.loop.run_forever()
        self.loop.close()

    def fired(self) -> list[tuple[float, dict]]:
        return [(t, m) for t, m in list(self.received)
                if any(tr["to_state"] == "fired" for tr in m.get("transitions", ()))]

    async def _listen(self, ready: threading.Event) -> None:
        self.listening = asyncio.current_task()
        url = urlparse(self.base_url)
        socket = await MinimalWebsocket.open(url.hostname, url.port, "/ws/runs/", {
            "Cookie": f"sessionid={self.session}", "Origin": self.base_url})
        try:
            while True:
                text = await socket.receive()
                received = time.time()
                message = json.loads(text)
                if message["type"] == "hello":
                    ready.set()
                elif message["type"] == "run":
                    self.received.append((received, message))
        finally:
            socket.close()


class MinimalWebsocket:
    """Just enough of RFC 6455 for a client that listens: the upgrade, unmasked text frames
    from the server, pongs to its pings. (autobahn's asyncio client cannot be used here:
    Django's app registry imports daphne, which ties txaio to Twisted for the process.)"""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, path: str, headers: dict[str, str]):
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = await reader.readuntil(b"\r\n\r\n")
        if not response.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"websocket refused: {response.splitlines()[0]!r}")
        return cls(reader, writer)

    async def receive(self) -> str:
        """The next text message (pings are answered, fragments joined)."""
        parts: list[bytes] = []
        while True:
            head = await self.reader.readexactly(2)
            fin, opcode, length = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x7F
            if length >= 126:
                size = 2 if length == 126 else 8
                length = int.from_bytes(await self.reader.readexactly(size), "big")
            payload = await self.reader.readexactly(length)
            if opcode == 0x8:
                raise ConnectionError(f"closed by the server: {payload[:2].hex()}")
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode in (0x0, 0x1):
                parts.append(payload)
                if fin:
                    return b"".join(parts).decode()

    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked frame (clients must mask); control frames only, so under 126 bytes."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        self.writer.close()
