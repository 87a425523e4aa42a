"""Fixtures for the instruction tests: a real HTTP server on loopback and an ExecContext."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from engine.clock import FakeClock
from engine.instructions import ExecContext
from tests.engine.fakes import MemoryStore

# Released at teardown so that handlers still "being slow" end at once.
_release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do: exercises the pool

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._route()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _route(self) -> None:
        parts = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        name, _, arg = parts.path.strip("/").partition("/")
        getattr(self, f"route_{name}", self.route_missing)(arg)

    def reply(self, status: int, body: bytes, content_type: str | None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Test", "yes")
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, status: int, data: object) -> None:
        self.reply(status, json.dumps(data).encode(), "application/json")

    def route_missing(self, arg: str) -> None:
        self.reply_json(404, {"error": "no such route"})

    def route_json(self, arg: str) -> None:
        self.reply_json(200, {"ok": True, "items": [1, 2]})

    def route_text(self, arg: str) -> None:
        """UTF-8 text; ``/text/latin1`` in ISO-8859-1, ``/text/nocharset`` undeclared UTF-8."""
        types = {"latin1": "text/plain; charset=ISO-8859-1", "nocharset": "text/plain"}
        encoding = "latin-1" if arg == "latin1" else "utf-8"
        self.reply(200, "héllo".encode(encoding), types.get(arg, "text/plain; charset=utf-8"))

    def route_bare(self, arg: str) -> None:
        """JSON without a Content-Type, or text (``/bare/text``) without one."""
        self.reply(200, b"plain words" if arg == "text" else b'{"bare": 1}', None)

    def route_status(self, arg: str) -> None:
        self.reply_json(int(arg), {"error": f"status {arg}", "detail": "x" * 500})

    def route_slow(self, arg: str) -> None:
        _release.wait(timeout=float(arg or 10))
        self.reply_json(200, {"slow": True})

    def route_trickle(self, arg: str) -> None:
        """Headers at once, then a byte at a time until released."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            self.wfile.write(b"x")
            self.wfile.flush()
            if _release.wait(timeout=0.05):
                return

    def route_huge(self, arg: str) -> None:
        size = int(arg)
        self.reply(200, b"[" + b"1," * (size // 2) + b"1]", "application/json")

    def route_stream(self, arg: str) -> None:
        """``/stream/<n>``: announces n bytes and streams them until done or the client
        hangs up, never holding more than one chunk (a far end answering 300 MB)."""
        size, chunk = int(arg), b"x" * 65536
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            for _ in range(size // len(chunk)):
                self.wfile.write(chunk)
            self.wfile.write(b"x" * (size % len(chunk)))
        except OSError:
            return

    def route_echo(self, arg: str) -> None:
        self.reply_json(
            200,
            {
                "method": self.command,
                "query": self.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": self.body.decode(),
                "peer_port": self.client_address[1],
            },
        )

    def route_rpc(self, arg: str) -> None:
        call = json.loads(self.body)
        status, reply = _rpc_reply(call, arg)
        self.reply_json(status, reply)


def _rpc_reply(call: dict, mode: str) -> tuple[int, object]:
    if mode == "not-rpc":
        return 200, {"hello": "world"}
    if mode == "http-500":
        return 500, {
            "jsonrpc": "2.0",
            "id": call["id"],
            "error": {"code": -32000, "message": "down"},
        }
    if mode == "bare-500":
        return 500, {"oops": True}
    if mode == "wrong-id":
        return 200, {"jsonrpc": "2.0", "id": "other", "result": 1}
    if mode == "batch":
        return 200, [{"jsonrpc": "2.0", "id": call["id"], "result": 1}]
    if mode.startswith("code"):  # /rpc/code-32601: that error code, with data
        error = {"code": -int(mode[5:]), "message": f"code {mode[4:]}", "data": {"at": "x"}}
        return 200, {"jsonrpc": "2.0", "id": call["id"], "error": error}
    if call["method"] == "fail":
        error = {"code": -32602, "message": "invalid params", "data": call.get("params")}
        return 200, {"jsonrpc": "2.0", "id": call["id"], "error": error}
    return 200, {"jsonrpc": "2.0", "id": call["id"], "result": {"echo": call}}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # Clients that time out or stop reading hang up mid-reply on purpose: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class Server:
    base: str

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"


@pytest.fixture(scope="session")
def http_server() -> Iterator[Server]:
    """A ThreadingHTTPServer on 127.0.0.1 with the routes above."""
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _release.clear()
    yield Server(base=f"http://127.0.0.1:{server.server_address[1]}")
    _release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_ctx():
    """Build an ExecContext: ``render`` is the identity unless given."""

    def make(
        *, timeout: float = 5.0, key: str = "run-1/pay/call", render=None, attempt: int = 1
    ) -> ExecContext:
        return ExecContext(
            render=render or (lambda value: value),
            timeout=timeout,
            idempotency_key=key,
            attempt=attempt,
        )

    return make


@pytest.fixture
def ctx(make_ctx) -> ExecContext:
    return make_ctx()


@pytest.fixture
def clock() -> FakeClock:
    """The engine's fake clock: time moves only when a test moves it."""
    return FakeClock()


@pytest.fixture
def store() -> MemoryStore:
    """An in-memory run store that records what a step commits."""
    return MemoryStore()
