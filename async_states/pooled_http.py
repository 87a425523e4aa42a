"""HTTP for daphne: Django's WSGI handler on a fixed pool of long-lived threads.

Django's ASGI handler runs each request's synchronous code on a thread made for that request
(one asgiref ``ThreadSensitiveContext`` per request), and database connections belong to
threads. So every request opened a new PostgreSQL connection (a third of a
``POST /api/runs/`` here), and with ``CONN_MAX_AGE`` above 0 left it open when the thread
ended, until the garbage collector found it (Django ticket #33497; Django's answer is a
connection pool, which psycopg2 has not). Every view of ours is synchronous, so nothing is
lost by serving HTTP as WSGI from ``threads`` threads that live as long as the process: each
keeps its connection between requests (``CONN_MAX_AGE`` works as under any WSGI server), a
process holds at most ``threads`` connections, and a slow request holds one thread, not the
process. Websockets stay on Channels.

The environ follows the ASGI specification's HTTP-to-WSGI mapping; the response streams back
chunk by chunk, and the WSGI iterable is closed on its thread, where Django then sends
``request_finished`` and tidies that thread's connection.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile
from typing import IO, Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Request bodies up to this size stay in memory; larger ones spill to a temporary file.
BODY_IN_MEMORY = 1024 * 1024


class PooledWSGI:
    """An ASGI HTTP application that runs ``wsgi_app`` on a fixed pool of threads."""

    def __init__(self, wsgi_app: WSGIApp, threads: int, max_body: int | None = None):
        self.wsgi_app = wsgi_app
        self.threads = threads
        self.max_body = max_body
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"PooledWSGI serves HTTP only, not {scope['type']!r}")
        with SpooledTemporaryFile(max_size=BODY_IN_MEMORY) as body:
            read = await _read_body(receive, body, self.max_body)
            if read is _GONE:
                return  # the client went away before it finished sending
            if read is _TOO_LARGE:
                await _send_all(send, _too_large(self.max_body or 0))
                return
            body.seek(0)
            loop = asyncio.get_running_loop()
            exchange = _Exchange(scope, body, send, loop)
            await loop.run_in_executor(self.executor, exchange.run, self.wsgi_app)


_READ, _GONE, _TOO_LARGE = "read", "gone", "too large"


async def _read_body(receive: Receive, body: IO[bytes], limit: int | None) -> str:
    """Spool the body into ``body``; past ``limit`` bytes stop keeping it (the spool is a
    temporary file: an endless body would fill the disk) but go on reading, up to ``limit``
    more, so that a client that sends its whole body before it reads hears the 413."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _GONE
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is None or size <= limit:
            body.write(chunk)
        elif size > 2 * limit:
            return _TOO_LARGE
        if not message.get("more_body"):
            return _READ if limit is None or size <= limit else _TOO_LARGE


def _too_large(limit: int) -> list[Message]:
    """A 413 in the API's error shape (taskapp/api/errors.py), the connection then closed:
    the rest of the body may still be on its way."""
    body = json.dumps({
        "code": "request_too_large", "errors": {},
        "message": f"the request body is larger than {limit} bytes (WEB_MAX_BODY_BYTES)",
    }).encode()
    return [
        {"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]},
        {"type": "http.response.body", "body": body, "more_body": False},
    ]


class _Exchange:
    """One request on its pool thread: build the environ, call the app, stream the answer."""

    def __init__(self, scope: Scope, body: IO[bytes], send: Send,
                 loop: asyncio.AbstractEventLoop):
        self.scope, self.body, self._send, self.loop = scope, body, send, loop
        self.start: Message | None = None
        self.started = False
        self.pending: list[Message] = []

    def run(self, app: WSGIApp) -> None:
        result = app(wsgi_environ(self.scope, self.body), self.start_response)
        streaming = getattr(result, "streaming", True)  # Django's HttpResponse says False
        try:
            for chunk in result:
                if chunk:
                    self._queue_body(chunk)
                    if streaming:
                        self._flush()  # each chunk as it comes: the client may be waiting
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # Django: request_finished, on the thread that owns the connection
        self._queue_body(b"", more=False)
        self._flush()

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info and self.started:
            raise exc_info[1].with_traceback(exc_info[2])
        self.start = {
            "type": "http.response.start",
            "status": int(status.split(" ", 1)[0]),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
        return self._write

    def _write(self, chunk: bytes) -> None:
        """PEP 3333's legacy ``write()``; Django never calls it, other WSGI apps may."""
        if chunk:
            self._queue_body(chunk)
            self._flush()

    def _queue_body(self, chunk: bytes, more: bool = True) -> None:
        if not self.started:
            if self.start is None:
                raise RuntimeError("the WSGI application sent a body before start_response")
            self.started = True
            self.pending.append(self.start)
        self.pending.append({"type": "http.response.body", "body": chunk, "more_body": more})

    def _flush(self) -> None:
        """Send what is queued in one hop to the event loop (a whole ordinary response is
        one hop: its start, its body and its end)."""
        messages, self.pending = self.pending, []
        if messages:
            asyncio.run_coroutine_threadsafe(_send_all(self._send, messages), self.loop).result()


async def _send_all(send: Send, messages: list[Message]) -> None:
    for message in messages:
        await send(message)


def wsgi_environ(scope: Scope, body: IO[bytes]) -> dict[str, Any]:
    """The WSGI environ for an ASGI HTTP scope (ASGI spec, "WSGI Compatibility")."""
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root):]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if client := scope.get("client"):
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    environ.update(_headers(scope.get("headers", [])))
    if "CONTENT_LENGTH" not in environ:
        # A chunked request has no Content-Length, and Django then reads no body at all;
        # the whole body is spooled already, so say how long it is.
        size = body.seek(0, 2)
        body.seek(0)
        if size:
            environ["CONTENT_LENGTH"] = str(size)
    return environ


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """HTTP headers as CGI variables; repeated ones joined as RFC 9110 allows (cookies with
    ``; ``, as RFC 6265 sends them)."""
    out: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name = name_bytes.decode("latin-1").upper().replace("-", "_")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        value = value_bytes.decode("latin-1")
        if key in out:
            value = out[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        out[key] = value
    return out
