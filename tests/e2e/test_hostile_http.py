"""Hostile HTTP through a real daphne, for what Django's test client cannot send or does not
do as a server does: bodies of 10 and 20 MB, a chunked body (no Content-Length), NUL in a
path, deep JSON and lone surrogates on the wire. Every answer is a 4xx in the API's error
shape (taskapp/api/errors.py), never a 500 nor Django's HTML page."""

from __future__ import annotations

import json
import socket

import pytest
import requests
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token

from taskapp import models
from taskapp.services import definition_load
from tests.e2e.conftest import ARTIFACTS, Daphne, server_environment
from tests.taskapp.api.conftest import SHOP

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

MB = 1024 * 1024


@pytest.fixture
def web(transactional_db):
    definition_load(text=SHOP.replace("VERSION", "1"), source="shop.yaml")
    user = User.objects.create_user("hostile")
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="taskapp", codename__in=["add_run", "change_run"]))
    server = Daphne(server_environment(),
                    log=ARTIFACTS / "daphne-hostile.log")
    session = requests.Session()
    session.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"
    yield server, session
    session.close()
    server.stop()


def assert_error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "errors"}, body
    return body


def _chunks(total: int, size: int = 64 * 1024):
    yield b'{"task": "shop_order", "input": {"order_id": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}}'


def test_hostile_bodies_through_daphne(web):
    server, session = web
    url = f"{server.url}/api/runs/"
    json_type = {"Content-Type": "application/json"}

    body = assert_error(session.post(url, data=b"".join(_chunks(10 * MB)), headers=json_type),
                        413)
    assert "API_MAX_BODY_BYTES" in body["message"]  # Django's view, not its HTML 400

    body = assert_error(session.post(url, data=_chunks(10 * MB), headers=json_type), 413)
    assert "API_MAX_BODY_BYTES" in body["message"]  # chunked: no Content-Length

    body = assert_error(session.post(url, data=b"".join(_chunks(20 * MB)), headers=json_type),
                        413)
    assert "WEB_MAX_BODY_BYTES" in body["message"]  # the adapter stopped spooling

    assert_error(session.post(url, data=b"[" * 10_000 + b"]" * 10_000, headers=json_type), 400)
    body = assert_error(session.post(url, data=b'{"task": "shop_order", "input": '
                                               b'{"order_id": "\\ud800\\u0000"}}',
                                     headers=json_type), 400)
    assert list(body["errors"]) == ["input.order_id"]
    assert_error(session.post(url, data=b'{"task": "\xff"}', headers=json_type), 400)
    assert models.Run.objects.count() == 0

    ok = session.post(url, json={"task": "shop_order", "input": {"order_id": "fine"}})
    assert ok.status_code == 201, ok.content  # and the server still serves


def _raw(server: Daphne, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])),
                                  timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_nul_in_a_path_through_daphne(web):
    server, session = web
    token = session.headers["Authorization"].encode()
    for path in (b"/api/tasks/%00/", b"/api/runs/%00/cancel/", b"/api/%00", b"/api/tasks/a%00b/"):
        status, body = _raw(server, b"GET " + path + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                            b"Authorization: " + token + b"\r\nConnection: close\r\n\r\n")
        assert status == 404, (path, status, body[:200])
        assert json.loads(body)["code"] == "not_found"
    status, body = _raw(server, b"GET /api/runs/?task=%00 HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                        b"Authorization: " + token + b"\r\nConnection: close\r\n\r\n")
    assert status == 400 and json.loads(body)["code"] == "invalid"
    # A raw NUL byte in the request line never reaches Django: the server refuses it.
    status, _ = _raw(server, b"GET /api/tasks/\x00/ HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                     b"Connection: close\r\n\r\n")
    assert 400 <= status < 500
