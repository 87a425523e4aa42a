"""The websocket's origin check: scheme, host and port must all match the server's own origin
(from the request's ``Host``) or an origin listed in ``WEBSOCKET_ALLOWED_ORIGINS`` /
``CSRF_TRUSTED_ORIGINS``; a page on another port of an allowed host is refused."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import origins

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 5


@pytest.fixture
def cookie(django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def hello(cookie: str, origin: str | None, host: str | None = None,
          scheme: str = "ws", extra: tuple[tuple[bytes, bytes], ...] = ()) -> bool:
    """True when a signed-in websocket with these headers is accepted and greeted."""
    from async_states.asgi import application

    headers = [(b"cookie", cookie.encode())]
    if host is not None:
        headers.append((b"host", host.encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))

    async def scenario() -> bool:
        socket = WebsocketCommunicator(application, "/ws/runs/", headers=[*headers, *extra])
        socket.scope["scheme"] = scheme
        ok, _ = await socket.connect(WAIT)
        if ok:
            assert (await socket.receive_json_from(WAIT))["type"] == "hello"
            await socket.disconnect()
        return ok

    return async_to_sync(scenario)()


def test_a_page_of_the_server_itself_is_accepted(cookie):
    assert hello(cookie, "http://127.0.0.1:8000", host="127.0.0.1:8000")
    assert hello(cookie, "http://localhost:41234", host="localhost:41234")
    assert hello(cookie, "http://[::1]:8000", host="[::1]:8000")


def test_a_page_on_another_port_of_an_allowed_host_is_refused(cookie):
    assert not hello(cookie, "http://127.0.0.1:9999", host="127.0.0.1:8000")
    assert not hello(cookie, "http://127.0.0.1", host="127.0.0.1:8000")  # port 80 is not 8000
    assert not hello(cookie, "http://127.0.0.1:8000", host="127.0.0.1")


def test_another_scheme_or_host_is_refused(cookie):
    assert not hello(cookie, "https://127.0.0.1:8000", host="127.0.0.1:8000")
    assert not hello(cookie, "http://localhost:8000", host="127.0.0.1:8000")
    assert not hello(cookie, "http://evil.example:8000", host="evil.example:8000")  # not allowed
    assert hello(cookie, "https://127.0.0.1:8443", host="127.0.0.1:8443", scheme="wss")
    assert not hello(cookie, "http://127.0.0.1:8443", host="127.0.0.1:8443", scheme="wss")


def test_missing_null_malformed_or_repeated_origins_are_refused(cookie):
    host = "127.0.0.1:8000"
    for origin in (None, "null", "", "127.0.0.1:8000", "http://127.0.0.1:99999",
                   "http://127.0.0.1:8000/path", "ftp://127.0.0.1:8000"):
        assert not hello(cookie, origin, host=host), origin
    assert not hello(cookie, "http://127.0.0.1:8000", host=None)
    twice = ((b"origin", b"http://127.0.0.1:9999"),)
    assert not hello(cookie, "http://127.0.0.1:8000", host=host, extra=twice)


@override_settings(WEBSOCKET_ALLOWED_ORIGINS=["https://ops.example.com",
                                              "http://127.0.0.1:3000"])
def test_listed_origins_are_accepted_with_their_exact_port(cookie):
    host = "127.0.0.1:8000"
    assert hello(cookie, "https://ops.example.com", host=host)
    assert hello(cookie, "https://ops.example.com:443", host=host)
    assert not hello(cookie, "https://ops.example.com:8443", host=host)
    assert not hello(cookie, "http://ops.example.com", host=host)
    assert hello(cookie, "http://127.0.0.1:3000", host=host)
    assert not hello(cookie, "http://127.0.0.1:3001", host=host)


@override_settings(CSRF_TRUSTED_ORIGINS=["https://admin.example.com:8443"])
def test_csrf_trusted_origins_are_accepted_too(cookie):
    assert hello(cookie, "https://admin.example.com:8443", host="127.0.0.1:8000")
    assert not hello(cookie, "https://admin.example.com", host="127.0.0.1:8000")


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
                   ALLOWED_HOSTS=["ops.example.com"])
def test_behind_a_tls_proxy_the_own_origin_is_https(cookie):
    proxied = ((b"x-forwarded-proto", b"https"),)
    assert hello(cookie, "https://ops.example.com", host="ops.example.com", extra=proxied)
    assert not hello(cookie, "http://ops.example.com", host="ops.example.com", extra=proxied)
    assert hello(cookie, "http://ops.example.com", host="ops.example.com")


@pytest.mark.parametrize("entry", ["*.example.com", "https://*.example.com", "example.com",
                                   "https://example.com/app", "https://x:notaport"])
def test_a_bad_listed_origin_is_a_configuration_error(entry):
    with override_settings(WEBSOCKET_ALLOWED_ORIGINS=[entry]), \
            pytest.raises(ImproperlyConfigured, match="scheme://host\\[:port\\]"):
        origins.configured_origins()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http", "https", "ws", "ftp", ""]),
       st.sampled_from(["127.0.0.1", "localhost", "[::1]", "evil.example", ""]),
       st.one_of(st.none(), st.integers(min_value=0, max_value=70000)))
def test_only_the_exact_own_origin_passes(scheme, host, port):
    """Whatever origin a page claims, only scheme, host and port equal to the server's pass."""
    origin = f"{scheme}://{host}" + ("" if port is None else f":{port}")
    scope = {"type": "websocket", "scheme": "ws",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"origin", origin.encode())]}
    expected = (scheme, host, port) == ("http", "127.0.0.1", 8000)
    assert origins.allowed(scope, allowed_origins=()) is expected
