"""The http instruction against a real server on loopback."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from engine.errors import InstructionError
from engine.instructions import http
from engine.language.model import HttpAuth, HttpSpec
from tests.engine.forking import in_child
from tests.tlscert import self_signed


def run(spec: HttpSpec, ctx):
    return http.EXECUTOR.execute(spec, ctx)


def failure(spec: HttpSpec, ctx) -> InstructionError:
    with pytest.raises(InstructionError) as info:
        run(spec, ctx)
    return info.value


def echo(http_server, ctx, **fields) -> dict:
    return run(HttpSpec(url=http_server.url("echo"), **fields), ctx)["body"]


def test_json_response_is_parsed_with_status_and_lowercase_headers(http_server, ctx):
    result = run(HttpSpec(url=http_server.url("json")), ctx)
    assert result["status"] == 200
    assert result["body"] == {"ok": True, "items": [1, 2]}
    assert result["headers"]["content-type"] == "application/json"
    assert result["headers"]["x-test"] == "yes"
    assert isinstance(result["elapsed_ms"], float) and result["elapsed_ms"] >= 0
    assert "truncated" not in result
    json.dumps(result)  # what is saved into the run must serialise


@pytest.mark.parametrize("route", ["text", "text/latin1", "text/nocharset"])
def test_text_response_is_decoded_with_its_charset_else_utf8(http_server, ctx, route):
    assert run(HttpSpec(url=http_server.url(route)), ctx)["body"] == "héllo"


def test_body_without_content_type_is_json_when_it_parses(http_server, ctx):
    assert run(HttpSpec(url=http_server.url("bare")), ctx)["body"] == {"bare": 1}
    assert run(HttpSpec(url=http_server.url("bare/text")), ctx)["body"] == "plain words"


def test_every_request_carries_idempotency_key_and_user_agent(http_server, make_ctx):
    headers = echo(http_server, make_ctx(key="run-7/s/i"))["headers"]
    assert headers["idempotency-key"] == "run-7/s/i"
    assert headers["user-agent"] == "async-states/0.1"


def test_spec_idempotency_key_wins_whatever_its_case(http_server, ctx):
    headers = echo(http_server, ctx, headers=(("idempotency-key", "mine"),))["headers"]
    assert headers["idempotency-key"] == "mine"


def test_method_headers_and_query_are_sent(http_server, ctx):
    seen = echo(
        http_server,
        ctx,
        method="delete",
        headers=(("X-Count", 3),),
        query=(("q", "a b"), ("token", "s3cret")),
    )
    assert seen["method"] == "DELETE"
    assert seen["headers"]["x-count"] == "3"
    assert seen["query"] == {"q": "a b", "token": "s3cret"}


def test_json_body_is_sent_as_json(http_server, ctx):
    seen = echo(http_server, ctx, method="POST", json={"amount": 5, "tags": ("a",)})
    assert seen["headers"]["content-type"] == "application/json"
    assert json.loads(seen["body"]) == {"amount": 5, "tags": ["a"]}


def test_form_body_is_sent_url_encoded(http_server, ctx):
    seen = echo(http_server, ctx, method="POST", form=(("a", "1"), ("b", "x y")))
    assert seen["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert seen["body"] == "a=1&b=x+y"


def test_basic_and_bearer_auth(http_server, ctx):
    basic = echo(http_server, ctx, auth=HttpAuth(kind="basic", username="u", password="p"))
    assert basic["headers"]["authorization"] == "Basic dTpw"
    bearer = echo(http_server, ctx, auth=HttpAuth(kind="bearer", token="tok"))
    assert bearer["headers"]["authorization"] == "Bearer tok"


def test_templates_are_rendered_before_sending(http_server, make_ctx):
    values = {"{{ url }}": http_server.url("echo"), "{{ token }}": "T", "{{ n }}": 42}
    ctx = make_ctx(render=lambda value: _fake_render(value, values))
    seen = run(
        HttpSpec(
            url="{{ url }}",
            method="POST",
            query=(("n", "{{ n }}"),),
            json={"n": "{{ n }}"},
            auth=HttpAuth(kind="bearer", token="{{ token }}"),
        ),
        ctx,
    )["body"]
    assert seen["query"] == {"n": "42"}
    assert json.loads(seen["body"]) == {"n": 42}
    assert seen["headers"]["authorization"] == "Bearer T"


def _fake_render(value, values):
    if isinstance(value, str):
        return values.get(value, value)
    if isinstance(value, dict):
        return {k: _fake_render(v, values) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("status", "error_class", "retryable"),
    [(500, "5xx", True), (503, "5xx", True), (429, "429", True), (404, "4xx", False)],
)
def test_unexpected_status_is_classified(http_server, ctx, status, error_class, retryable):
    error = failure(HttpSpec(url=http_server.url(f"status/{status}")), ctx)
    assert (error.error_class, error.retryable) == (error_class, retryable)
    assert error.result["status"] == status
    assert error.result["body"]["error"] == f"status {status}"


def test_status_error_message_names_method_url_status_and_an_excerpt(http_server, ctx):
    url = http_server.url("status/500")
    error = failure(HttpSpec(url=url, query=(("key", "abc"),)), ctx)
    message = str(error)
    assert message.startswith(f"GET {url}?key=abc: status 500 (expected 2xx): ")
    assert '"error": "status 500"' in message
    assert len(message) < 400  # the 500-character detail is cut


def test_expect_accepts_listed_statuses_only(http_server, ctx):
    assert run(HttpSpec(url=http_server.url("status/404"), expect=(404,)), ctx)["status"] == 404
    error = failure(HttpSpec(url=http_server.url("json"), expect=(201,)), ctx)
    assert error.error_class == "status" and not error.retryable
    assert "expected 201" in str(error)


def test_connection_refused_is_a_retryable_connection_error(closed_port, ctx):
    url = f"http://127.0.0.1:{closed_port}/x"
    error = failure(HttpSpec(url=url, method="POST"), ctx)
    assert (error.error_class, error.retryable) == ("connection", True)
    assert str(error).startswith(f"POST {url}: connection failed")


class _TlsServer(HTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # the client refusing our certificate is what the test wants


@pytest.fixture
def untrusted_https(tmp_path) -> Iterator[int]:
    """The port of an HTTPS server on loopback whose certificate (for localhost) nobody
    signed: a client must refuse it."""
    key, cert = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _TlsServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_certificate_that_fails_verification_is_a_final_error(untrusted_https, ctx):
    url = f"https://localhost:{untrusted_https}/x"
    error = failure(HttpSpec(url=url), ctx)
    assert (error.error_class, error.retryable) == ("error", False)
    assert str(error) == (f"GET {url}: the server's TLS certificate failed verification: "
                          "self-signed certificate")


def test_slow_response_is_a_retryable_timeout(http_server, make_ctx):
    error = failure(HttpSpec(url=http_server.url("slow")), make_ctx(timeout=0.2))
    assert (error.error_class, error.retryable) == ("timeout", True)
    assert "timed out after 0.2s" in str(error)


def test_trickling_body_is_stopped_at_the_attempt_deadline(http_server, make_ctx):
    error = failure(HttpSpec(url=http_server.url("trickle")), make_ctx(timeout=0.3))
    assert error.error_class == "timeout"


def test_huge_body_is_truncated_and_returned_as_text(http_server, ctx):
    result = run(HttpSpec(url=http_server.url("huge/200000"), max_response_bytes=1000), ctx)
    assert result["truncated"] is True
    assert isinstance(result["body"], str) and len(result["body"]) == 1000
    assert result["body"].startswith("[1,1,")


def test_body_exactly_at_the_cap_is_not_truncated(http_server, ctx):
    result = run(HttpSpec(url=http_server.url("huge/10"), max_response_bytes=13), ctx)
    assert result["body"] == [1, 1, 1, 1, 1, 1]
    assert "truncated" not in result


def test_a_300_mb_answer_fails_at_the_result_limit_without_being_read(http_server, ctx):
    import dataclasses
    import resource

    limited = dataclasses.replace(ctx, max_result_bytes=1 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    error = failure(HttpSpec(url=http_server.url("stream/300000000"),
                             max_response_bytes=400_000_000), limited)
    assert str(error) == (
        "GET: the response body is larger than 1,048,576 bytes, the limit on instruction "
        "results (MAX_RESULT_BYTES); max_response_bytes (400,000,000) cannot raise it")
    assert error.error_class == "error" and not error.retryable
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024  # a few MiB of buffers, never the 300 MB


def test_a_cap_below_the_result_limit_still_truncates(http_server, make_ctx):
    import dataclasses

    limited = dataclasses.replace(make_ctx(), max_result_bytes=1 << 20)
    result = run(HttpSpec(url=http_server.url("stream/3000000"), max_response_bytes=1000),
                 limited)
    assert result["truncated"] is True and len(result["body"]) == 1000


def test_bad_url_is_a_non_retryable_error(ctx):
    error = failure(HttpSpec(url="not a url"), ctx)
    assert (error.error_class, error.retryable) == ("error", False)
    assert "not a url" in str(error)


def test_body_that_does_not_encode_is_an_error(http_server, ctx):
    error = failure(HttpSpec(url=http_server.url("echo"), json={"x": float("nan")}), ctx)
    assert error.error_class == "error"


def test_unknown_auth_kind_is_an_error(http_server, ctx):
    error = failure(HttpSpec(url=http_server.url("echo"), auth=HttpAuth(kind="digest")), ctx)
    assert "digest" in str(error)


def test_connections_are_reused_within_a_thread(http_server, ctx):
    first = echo(http_server, ctx)["peer_port"]
    assert echo(http_server, ctx)["peer_port"] == first


def test_a_forked_child_gets_its_own_session():
    parent = http.session()
    assert http.session() is parent
    assert in_child(lambda: http.session() is not parent) == 0


def test_sessions_are_per_thread():
    import threading

    seen = []
    thread = threading.Thread(target=lambda: seen.append(http.session()))
    thread.start()
    thread.join(timeout=5)
    assert seen and seen[0] is not http.session()


def test_proxies_from_the_environment_are_honoured(monkeypatch):
    """The environment's proxy settings are read once per origin, and still applied."""
    from engine.instructions import http

    http._environment_settings.cache_clear()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    try:
        proxied = dict(http._environment_settings("http://api.example:80"))["proxies"]
        bypassed = dict(http._environment_settings("http://internal.example:80"))["proxies"]
    finally:
        http._environment_settings.cache_clear()
    assert proxied.get("http") == "http://127.0.0.1:3128"
    assert not bypassed.get("http")


@pytest.mark.parametrize("route", ["status/500", "status/404"])
def test_messages_show_the_url_and_query_as_written_never_as_sent(http_server, make_ctx, route):
    values = {"{{ base }}": http_server.url(route), "{{ key }}": "k3y/with spaces&more"}
    ctx = make_ctx(render=lambda value: _fake_render(value, values))
    error = failure(HttpSpec(url="{{ base }}", query=(("key", "{{ key }}"),)), ctx)
    assert str(error).startswith("GET {{ base }}?key={{ key }}: status ")
    assert "k3y" not in str(error) and http_server.url(route) not in str(error)


def test_a_refused_connection_keeps_only_its_root_cause(closed_port, make_ctx):
    url = f"http://127.0.0.1:{closed_port}/x/k3y%2Fsecret?token=k3y"
    ctx = make_ctx(render=lambda value: url if value == "{{ url }}" else value)
    error = failure(HttpSpec(url="{{ url }}"), ctx)
    assert str(error) == "GET {{ url }}: connection failed: Connection refused"


def test_a_bad_rendered_url_is_not_quoted_in_the_message(make_ctx):
    ctx = make_ctx(render=lambda value: "no scheme k3y" if value == "{{ url }}" else value)
    error = failure(HttpSpec(url="{{ url }}"), ctx)
    assert str(error) == "GET {{ url }}: cannot build the request: the URL is not valid " \
        "(InvalidURL)"
