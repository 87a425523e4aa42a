"""The rpc instruction's JSON-RPC 2.0 calls over HTTP POST against a real server on loopback:
the envelope, and the specification's error objects mapped onto error classes."""

from __future__ import annotations

import pytest

from engine.errors import InstructionError
from engine.instructions import rpc
from engine.language.model import HttpAuth, RpcSpec


def call(spec: RpcSpec, ctx):
    return rpc.EXECUTOR.execute(spec, ctx)


def failure(spec: RpcSpec, ctx) -> InstructionError:
    with pytest.raises(InstructionError) as info:
        call(spec, ctx)
    return info.value


def test_result_member_is_returned_and_request_is_jsonrpc_2(http_server, make_ctx):
    spec = RpcSpec(url=http_server.url("rpc"), method="add", params={"a": 1, "b": 2})
    result = call(spec, make_ctx(key="run-1/s/add"))
    assert result == {
        "echo": {"jsonrpc": "2.0", "method": "add", "params": {"a": 1, "b": 2}, "id": "run-1/s/add"}
    }


def test_params_are_omitted_when_absent(http_server, ctx):
    assert "params" not in call(RpcSpec(url=http_server.url("rpc"), method="ping"), ctx)["echo"]


def test_error_member_fails_without_retry_and_carries_the_error(http_server, ctx):
    error = failure(RpcSpec(url=http_server.url("rpc"), method="fail", params=[1]), ctx)
    assert (error.error_class, error.retryable) == ("error", False)
    assert error.result == {"code": -32602, "message": "invalid params", "data": [1]}
    assert "error -32602 (invalid params): invalid params; data: [1]" in str(error)


@pytest.mark.parametrize(
    ("code", "meaning", "error_class"),
    [
        (32700, "parse error", "error"),
        (32600, "invalid request", "error"),
        (32601, "method not found", "error"),
        (32602, "invalid params", "error"),
        (32603, "internal error", "error"),
        (32000, "server error", "5xx"),
        (32099, "server error", "5xx"),
        (1, "application error", "error"),
    ],
)
def test_error_objects_are_classified_by_code_and_kept_whole(
    http_server, ctx, code, meaning, error_class
):
    error = failure(RpcSpec(url=http_server.url(f"rpc/code-{code}"), method="m"), ctx)
    assert (error.error_class, error.retryable) == (error_class, error_class == "5xx")
    assert f"error -{code} ({meaning}): code -{code}; data: {{\"at\": \"x\"}}" in str(error)
    assert error.result == {"code": -code, "message": f"code -{code}", "data": {"at": "x"}}


def test_a_batch_reply_to_one_call_is_not_a_response(http_server, ctx):
    error = failure(RpcSpec(url=http_server.url("rpc/batch"), method="x"), ctx)
    assert "not a JSON-RPC response" in str(error) and not error.retryable


def test_error_member_wins_over_an_http_500(http_server, ctx):
    error = failure(RpcSpec(url=http_server.url("rpc/http-500"), method="x"), ctx)
    assert (error.error_class, error.retryable) == ("5xx", True)  # -32000: a server error
    assert error.result["message"] == "down"


def test_http_500_without_jsonrpc_error_is_a_retryable_5xx(http_server, ctx):
    error = failure(RpcSpec(url=http_server.url("rpc/bare-500"), method="x"), ctx)
    assert (error.error_class, error.retryable) == ("5xx", True)


def test_reply_that_is_not_jsonrpc_is_an_error(http_server, ctx):
    error = failure(RpcSpec(url=http_server.url("rpc/not-rpc"), method="x"), ctx)
    assert error.error_class == "error"
    assert "not a JSON-RPC response" in str(error)


def test_reply_with_another_id_is_an_error(http_server, ctx):
    error = failure(RpcSpec(url=http_server.url("rpc/wrong-id"), method="x"), ctx)
    assert "does not match" in str(error)


def test_an_unknown_protocol_is_refused(http_server, ctx):
    error = failure(RpcSpec(url=http_server.url("rpc"), method="x", protocol="soap"), ctx)
    assert "'soap' is not supported: use 'jsonrpc'" in str(error)
    assert not error.retryable


def test_transport_failures_are_classified_like_http(closed_port, ctx):
    error = failure(RpcSpec(url=f"http://127.0.0.1:{closed_port}/rpc", method="x"), ctx)
    assert (error.error_class, error.retryable) == ("connection", True)


def test_headers_auth_and_idempotency_key_reach_the_server(http_server, make_ctx):
    # The echo route is not JSON-RPC, so the request it saw comes back in the error's result.
    spec = RpcSpec(
        url=http_server.url("echo"),
        method="x",
        headers=(("X-Trace", "t1"),),
        auth=HttpAuth(kind="bearer", token="tok"),
    )
    seen = failure(spec, make_ctx(key="k-9")).result["body"]["headers"]
    assert seen["x-trace"] == "t1"
    assert seen["authorization"] == "Bearer tok"
    assert seen["idempotency-key"] == "k-9"
    assert seen["content-type"] == "application/json"
