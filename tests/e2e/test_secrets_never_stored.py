"""No secret in any form anywhere: real runs on the real cluster send secrets in URL paths and
queries, headers, JSON and form bodies, basic and bearer auth, to a far end that echoes all of
it back — in 2xx results, 4xx and 5xx error bodies, JSON-RPC errors and response headers —
and fails in every way (4xx, 5xx, connection refused, timeouts, with retries, a poll that
gives up). Then every byte the system keeps or shows is scanned for each secret, and for the
values derived from them that were sent and echoed (a reversed token, a slice), raw, in any
letter case, URL-encoded, HTML- or JSON-escaped, base64 at any alignment, and hex
(``tests.leaks``): every row of every table (django-q2's included), the cluster's log at
DEBUG, this process's log, the API, the admin change pages, the dashboard pages and the
websocket's messages. 0 hits.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import connection

from taskapp import models
from taskapp.services import run_start
from tests.e2e.conftest import Cluster, server_environment, wait_for
from tests.leaks import found

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# Distinctive values: URL-encoding changes most of their characters, case matters to them,
# and some are not ASCII (the basic-auth password is sent in Latin-1, the rest in UTF-8).
SECRETS = {
    "PATH_KEY": "pAth/Kéy wïth+plus&amp;",
    "QUERY_KEY": "qUery=Key&x y+z%41/?",
    "HEADER_TOKEN": "HeAder-T0ken/with+plus==",
    "BODY_SECRET": 'bOdy "quoted" sëcret\\slash',
    "BASIC_USER": "sUser!name",
    "BASIC_PASS": "pA55:wörd/+=Zq",
    "BEARER": "BeArer.Tok3n~with/slash+plus",
}

# Values derived from secrets in what is sent, echoed back by the far end like the rest.
DERIVED = {
    "reversed HEADER_TOKEN": SECRETS["HEADER_TOKEN"][::-1],
    "slice of BEARER": SECRETS["BEARER"][3:15],
}

SENT = """
          query: {key: "{{ secrets.QUERY_KEY }}", up: "{{ secrets.QUERY_KEY | upper }}"}
          headers: {X-Token: "{{ secrets.HEADER_TOKEN }}",
                    X-Lower: "{{ secrets.HEADER_TOKEN | lower }}",
                    X-Reversed: "{{ secrets.HEADER_TOKEN | reverse }}",
                    X-Slice: "{{ secrets.BEARER[3:15] }}"}"""

TASK = """
name: secret_scan
version: 1
start_state: ok
states:
  ok:
    instructions:
      - name: echo_basic
        http:
          url: "{{ secrets.FAR_END }}/ok/{{ secrets.PATH_KEY | urlencode }}"
          method: POST%(sent)s
          json: {secret: "{{ secrets.BODY_SECRET }}", up: ["{{ secrets.BODY_SECRET | upper }}"]}
          auth:
            basic: {username: "{{ secrets.BASIC_USER }}", password: "{{ secrets.BASIC_PASS }}"}
        save_as: echo_basic
      - name: echo_form
        http:
          url: "{{ secrets.FAR_END }}/ok/form?k={{ secrets.QUERY_KEY | urlencode }}"
          method: POST
          form: {secret: "{{ secrets.BODY_SECRET }}"}
          auth: {bearer: "{{ secrets.BEARER }}"}
        save_as: echo_form
    transitions: [{to: bad}]
  bad:
    instructions:
      - name: status_400
        http:
          url: "{{ secrets.FAR_END }}/bad/{{ secrets.PATH_KEY | urlencode }}"%(sent)s
          auth: {bearer: "{{ secrets.BEARER }}"}
        on_error: boom
    transitions: [{to: boom}]
  boom:
    instructions:
      - name: status_500
        http:
          url: "{{ secrets.FAR_END }}/boom/{{ secrets.PATH_KEY | urlencode }}"
          method: PUT%(sent)s
          json: {secret: "{{ secrets.BODY_SECRET }}"}
          auth:
            basic: {username: "{{ secrets.BASIC_USER }}", password: "{{ secrets.BASIC_PASS }}"}
        retry: {max_attempts: 3, initial_delay: 100ms}
        on_error: slow
    transitions: [{to: slow}]
  slow:
    instructions:
      - name: too_slow
        http:
          url: "{{ secrets.FAR_END }}/slow/{{ secrets.PATH_KEY | urlencode }}"%(sent)s
        timeout: 500ms
        retry: {max_attempts: 2, initial_delay: 100ms}
        on_error: refused
    transitions: [{to: refused}]
  refused:
    instructions:
      - name: refused
        http:
          url: "http://127.0.0.1:%(closed)d/x/{{ secrets.PATH_KEY | urlencode }}"%(sent)s
        retry: {max_attempts: 2, initial_delay: 100ms}
        on_error: text_404
    transitions: [{to: text_404}]
  text_404:
    instructions:
      - name: text_404
        http:
          url: "{{ secrets.FAR_END }}/text/{{ secrets.PATH_KEY | urlencode }}"%(sent)s
          auth: {bearer: "{{ secrets.BEARER }}"}
        on_error: rpc_error
    transitions: [{to: rpc_error}]
  rpc_error:
    instructions:
      - name: rpc_error
        rpc:
          url: "{{ secrets.FAR_END }}/rpc"
          method: charge
          params: {token: "{{ secrets.BODY_SECRET }}", user: "{{ secrets.BASIC_USER }}"}
          headers: {X-Token: "{{ secrets.HEADER_TOKEN }}"}
        on_error: polling
    transitions: [{to: polling}]
  polling:
    transitions:
      - to: last
        poll:
          http:
            url: "{{ secrets.FAR_END }}/boom/{{ secrets.PATH_KEY | urlencode }}"%(poll_sent)s
          every: 100ms
          until: "result.status == 200"
          max_attempts: 2
          on_error: last
  last:
    instructions:
      - name: fails_the_run
        http:
          url: "{{ secrets.FAR_END }}/bad/{{ secrets.PATH_KEY | urlencode }}"
          query: {k: "{{ secrets.QUERY_KEY }}"}
          auth:
            basic: {username: "{{ secrets.BASIC_USER }}", password: "{{ secrets.BASIC_PASS }}"}
    transitions: [{to: done}]
  done: {final: succeeded}
"""


class _Echo(BaseHTTPRequestHandler):
    """Answers with everything it was sent: path and query as received, headers, body."""

    protocol_version = "HTTP/1.1"
    received: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        echo = {"path": self.path, "headers": dict(self.headers), "body": body}
        _Echo.received.append(f"{self.path}\n{self.headers}\n{body}")
        route = self.path.split("/")[1].split("?")[0]
        if route == "slow":
            time.sleep(1.5)
        if route == "rpc":
            call = json.loads(body)
            reply = {"jsonrpc": "2.0", "id": call["id"],
                     "error": {"code": 4001, "message": f"refused {call['params']}",
                               "data": echo}}
            return self._reply(200, json.dumps(reply), "application/json")
        if route == "text":
            text = f"no page {self.path}; you sent {self.headers.get('Authorization')} " \
                   f"and {self.headers.get('X-Token')}"
            return self._reply(404, text, "text/plain")
        status = {"ok": 200, "bad": 400, "boom": 503}.get(route, 404)
        self._reply(status, json.dumps(echo), "application/json")

    def _reply(self, status: int, text: str, content_type: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name in ("Authorization", "X-Token"):  # echoed in the response headers too
            if self.headers.get(name):
                self.send_header(f"X-Echo-{name}", self.headers[name].encode().decode("latin-1"))
        self.end_headers()
        try:
            self.wfile.write(data)
        except BrokenPipeError:  # the client timed out (the slow route): as intended
            pass

    do_GET = do_POST = do_PUT = _serve


@pytest.fixture
def echo() -> Iterator[str]:
    _Echo.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ran(transactional_db, echo, load) -> Iterator[tuple[models.Run, Cluster]]:
    env = server_environment(
        ASYNC_STATES_SECRET_FAR_END=echo,
        **{f"ASYNC_STATES_SECRET_{name}": value for name, value in SECRETS.items()},
        LOG_LEVEL="DEBUG", ASYNC_STATES_LOG_LEVEL="DEBUG", DJANGO_Q_LOG_LEVEL="DEBUG",
    )
    load(TASK % {"sent": SENT, "poll_sent": SENT.replace("\n", "\n  "), "closed": _closed_port()})
    cluster = Cluster(env)
    cluster.start()
    try:
        run, _ = run_start(task="secret_scan", input={"n": 1})
        yield wait_for(run.pk, timeout=60), cluster
    finally:
        cluster.stop()


def _every_row() -> Iterator[tuple[str, str]]:
    """(table, row) for every row of every table of the database."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                yield table, " | ".join(_text(value) for value in row)


def _text(value: object) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


def _pages(admin_client, run: models.Run) -> Iterator[tuple[str, str]]:
    urls = [f"/api/runs/{run.pk}/", f"/api/runs/{run.pk}/transitions/",
            f"/api/runs/{run.pk}/attempts/", "/api/runs/", f"/runs/{run.pk}/", "/",
            f"/admin/taskapp/run/{run.pk}/change/", "/admin/taskapp/run/",
            "/admin/taskapp/transition/"]
    urls += [f"/admin/taskapp/transition/{pk}/change/"
             for pk in models.Transition.objects.filter(run=run).values_list("pk", flat=True)]
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        yield url, response.content.decode()


def _websocket(admin_client, run: models.Run) -> list[str]:
    from async_states.asgi import application

    cookie = f"sessionid={admin_client.cookies['sessionid'].value}"

    async def scenario() -> list[str]:
        socket = WebsocketCommunicator(application, "/ws/runs/", headers=[
            (b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"),
            (b"cookie", cookie.encode())])
        ok, _ = await socket.connect(10)
        assert ok
        frames = [await socket.receive_from(10)]
        await socket.send_json_to({"type": "since", "at": "2000-01-01T00:00:00+00:00"})
        frames.append(await socket.receive_from(10))
        await socket.send_json_to({"type": "watch", "run": str(run.pk), "after": 0})
        frames.append(await socket.receive_from(10))
        await socket.disconnect()
        return frames

    return async_to_sync(scenario)()


def test_no_secret_is_stored_logged_or_shown_in_any_form(ran, admin_client, caplog):
    run, cluster = ran
    caplog.set_level(logging.DEBUG)
    # The runs did what the scan relies on: every failure kind, retried, and the far end
    # really got (and echoed) every secret.
    assert run.status == "failed", run.error
    kinds = set(models.InstructionAttempt.objects.filter(run=run)
                .values_list("error_class", flat=True))
    assert {"", "4xx", "5xx", "timeout", "connection", "error"} <= kinds, kinds
    assert models.InstructionAttempt.objects.filter(run=run, instruction="status_500").count() == 3
    assert models.PollRecord.objects.get(run=run).attempts == 2
    received = "\n".join(_Echo.received)
    scanned = {**SECRETS, **DERIVED}
    assert [name for name, value in scanned.items() if not found(value, received)] == []
    assert "***" in json.dumps(run.data) and "***" in str(run.error)

    haystacks = [(f"table {table}", row) for table, row in _every_row()]
    haystacks += [("cluster log", "".join(cluster.output))]
    haystacks += list(_pages(admin_client, run))
    haystacks += [("websocket", frame) for frame in _websocket(admin_client, run)]
    haystacks += [("this process's log", caplog.text)]
    assert len(haystacks) > 50 and "run.transition" in "".join(cluster.output)
    leaks = [(where, name) for where, text in haystacks for name, value in scanned.items()
             if found(value, text)]
    assert leaks == []


@pytest.mark.usefixtures("sqlite_pass_only")
def test_the_scan_finds_what_it_looks_for():
    """The detector is not blind: each form of each secret is found."""
    import base64
    from urllib.parse import quote, quote_plus

    for value in SECRETS.values():
        raw = f"u:{value}".encode()
        for text in (value, value.upper(), quote(value), quote_plus(value),
                     base64.b64encode(raw).decode(), base64.urlsafe_b64encode(b"xy" + raw).decode(),
                     value.encode().hex(), json.dumps(value)):
            assert found(value, f"<p>{text}</p>"), (value, text)
        assert not found(value, "nothing secret here: ***")
