"""async_states/pooled_http.py: daphne's HTTP runs Django's WSGI handler on a fixed pool of
long-lived threads. Driven here with a WSGI app of the test's own, no server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest

from async_states.pooled_http import PooledWSGI


def _scope(**extra) -> dict:
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "https",
             "path": "/app/api/runs/é", "root_path": "/app", "query_string": b"a=1&b=%20",
             "server": ("example.test", 8443), "client": ("10.0.0.7", 50123),
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"11"),
                         (b"x-trace", b"one"), (b"x-trace", b"two"),
                         (b"cookie", b"a=1"), (b"cookie", b"b=2")]}
    return scope | extra


def _serve(pool: PooledWSGI, scope: dict, chunks: list[bytes]) -> list[dict]:
    """Run one request through ``pool``; the messages it sent back."""
    incoming = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                for i, chunk in enumerate(chunks)]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(pool(scope, receive, send))
    return sent


class Recorder:
    """A WSGI app that answers with the body it read, and notes what it saw."""

    def __init__(self, chunks: tuple[bytes, ...] = (b"done",), streaming: bool | None = None):
        self.environs: list[dict] = []
        self.threads: list[str] = []
        self.closed_on: list[str] = []
        self.chunks, self.streaming = chunks, streaming

    def __call__(self, environ, start_response):
        self.environs.append(environ | {"body": environ["wsgi.input"].read()})
        self.threads.append(threading.current_thread().name)
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-One", "1")])
        return _Body(self)


class _Body:
    def __init__(self, app: Recorder):
        self.app = app
        if app.streaming is not None:
            self.streaming = app.streaming

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.app.chunks)

    def close(self) -> None:
        self.app.closed_on.append(threading.current_thread().name)


def test_the_environ_follows_the_asgi_to_wsgi_mapping():
    app = Recorder()
    _serve(PooledWSGI(app, threads=2), _scope(), [b'{"task":', b' 1}'])
    env = app.environs[0]
    assert env["REQUEST_METHOD"] == "POST"
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/api/runs/Ã©")  # latin-1 of UTF-8
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.test", "8443")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("10.0.0.7", "50123")
    assert env["wsgi.url_scheme"] == "https" and env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["CONTENT_TYPE"], env["CONTENT_LENGTH"]) == ("application/json", "11")
    assert env["HTTP_X_TRACE"] == "one,two"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["body"] == b'{"task": 1}'


def test_the_answer_is_its_status_headers_and_body_and_ends():
    sent = _serve(PooledWSGI(Recorder((b"do", b"ne")), threads=1), _scope(), [b""])
    assert sent[0] == {"type": "http.response.start", "status": 201,
                       "headers": [(b"content-type", b"text/plain"), (b"x-one", b"1")]}
    assert b"".join(m["body"] for m in sent[1:]) == b"done"
    assert [m["more_body"] for m in sent[1:]][-1] is False


def test_requests_reuse_the_pool_threads_and_close_on_them():
    app = Recorder()
    pool = PooledWSGI(app, threads=1)
    for _ in range(5):
        _serve(pool, _scope(), [b""])
    assert len(set(app.threads)) == 1 and app.threads[0].startswith("http")
    assert app.closed_on == app.threads  # Django's request_finished runs where the connection is


def test_a_client_gone_before_its_body_ends_calls_nothing():
    app = Recorder()
    pool = PooledWSGI(app, threads=1)
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": b"x", "more_body": True},
                {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(pool(_scope(), receive, send))
    assert app.environs == [] and sent == []


def test_a_body_before_start_response_is_an_error():
    def rude(environ, start_response):
        return [b"no status"]

    with pytest.raises(RuntimeError, match="before start_response"):
        _serve(PooledWSGI(rude, threads=1), _scope(), [b""])


def test_websockets_are_not_its_business():
    with pytest.raises(ValueError, match="HTTP only"):
        _serve(PooledWSGI(Recorder(), threads=1), _scope(type="websocket"), [b""])


@pytest.mark.parametrize("streaming, seen_before_second_chunk", [(True, 2), (False, 0)])
def test_streaming_bodies_go_out_chunk_by_chunk_ordinary_ones_in_one_hop(
        streaming, seen_before_second_chunk):
    seen: list[int] = []
    sent_so_far: list[dict] = []

    class Chunks:
        def __iter__(self):
            yield b"first"
            seen.append(len(sent_so_far))
            yield b"second"

    app = Recorder(Chunks(), streaming=streaming)
    pool = PooledWSGI(app, threads=1)
    incoming = [{"type": "http.request", "body": b""}]

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent_so_far.append(message)

    asyncio.run(pool(_scope(), receive, send))
    assert seen == [seen_before_second_chunk]  # start + "first" already out, or nothing yet
    assert b"".join(m.get("body", b"") for m in sent_so_far) == b"firstsecond"


def test_a_chunked_body_without_content_length_is_still_read():
    app = Recorder()
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    _serve(PooledWSGI(app, threads=1), _scope(headers=headers), [b'{"a":', b" 1}"])
    assert app.environs[0]["CONTENT_LENGTH"] == "8"
    assert app.environs[0]["body"] == b'{"a": 1}'


def test_a_body_past_the_limit_is_a_json_413_and_never_reaches_the_app():
    app = Recorder()
    pool = PooledWSGI(app, threads=1, max_body=10)
    sent = _serve(pool, _scope(), [b"12345", b"67890", b"1"])  # 11 bytes, in three chunks
    assert app.environs == []
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    body = json.loads(sent[1]["body"])
    assert body["code"] == "request_too_large" and "10 bytes" in body["message"]
    assert set(body) == {"code", "message", "errors"}


def test_a_body_at_the_limit_goes_through():
    app = Recorder()
    _serve(PooledWSGI(app, threads=1, max_body=10), _scope(), [b"12345", b"67890"])
    assert app.environs[0]["body"] == b"1234567890"


def test_an_endless_body_is_answered_after_twice_the_limit():
    """The adapter stops reading at twice its limit instead of waiting for the end."""
    app, reads = Recorder(), []

    async def receive() -> dict:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 10, "more_body": True}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(PooledWSGI(app, threads=1, max_body=100)(_scope(), receive, send))
    assert sent[0]["status"] == 413 and app.environs == []
    assert len(reads) == 21
