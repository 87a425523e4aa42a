"""JSON-RPC 2.0 over HTTP POST: one call, never a batch.

It owns the JSON-RPC envelope: the request object (its ``id`` is the idempotency key, so a
server can recognise a retried call) and reading the response object, whose ``error`` member
is mapped by its code (the specification's section 5.1):

- ``-32700`` parse error, ``-32600`` invalid request, ``-32601`` method not found, ``-32602``
  invalid params, ``-32603`` internal error, and any application-defined code: ``error``, final
  (the same call gets the same answer);
- ``-32000`` to ``-32099``, which the specification reserves for the server's own
  implementation-defined errors: ``5xx``, retryable like an HTTP 5xx.

The error object (code, message, data) is kept in the attempt's error message and as the
error's ``result``. Sending, timeouts and the classification of transport and status failures
are ``engine.instructions.http``'s (cannot connect, time out, 5xx, 429: retryable).
"""

from __future__ import annotations

from typing import Any

from engine.errors import InstructionError
from engine.instructions import ExecContext, instruction_error
from engine.instructions.http import (
    Exchange,
    HttpRequest,
    check_status,
    excerpt,
    render_auth,
    render_pairs,
    send,
    shown_url,
)
from engine.language.model import RpcSpec

# The codes the specification defines, by name (section 5.1).
STANDARD_ERRORS = {
    -32700: "parse error",
    -32600: "invalid request",
    -32601: "method not found",
    -32602: "invalid params",
    -32603: "internal error",
}
SERVER_ERRORS = range(-32099, -32000 + 1)


def call(spec: RpcSpec, ctx: ExecContext) -> Any:
    """Call ``spec.method`` with ``spec.params`` once.

    Returns:
        The response's ``result`` member.

    Raises:
        InstructionError: the server answered with an error object (classified by its code,
            see the module docstring); a reply that is not a JSON-RPC response (a batch, no
            ``result``, another ``id``); otherwise as ``http`` classifies transport and status
            failures.
    """
    if spec.url is None:
        raise InstructionError("rpc: a jsonrpc call needs a url")
    method = str(ctx.render(spec.method))
    payload: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if spec.params is not None:
        payload["params"] = ctx.render(spec.params)
    payload["id"] = ctx.idempotency_key
    request = HttpRequest(
        method="POST",
        url=str(ctx.render(spec.url)),
        shown=shown_url(spec.url),
        headers=render_pairs(spec.headers, ctx) or {},
        json=payload,
        auth=render_auth(spec.auth, ctx),
    )
    return _read_reply(spec.method, send(request, ctx), ctx.idempotency_key)


def _read_reply(method: str, exchange: Exchange, call_id: str) -> Any:
    """``method`` is as written in the task, like the URL messages show."""
    # Many servers answer a JSON-RPC error with HTTP 500: the error member is the better
    # account of what happened.
    reply = exchange.result["body"]
    where = f"rpc {method!r} at {exchange.shown}"
    if isinstance(reply, dict) and "error" in reply:
        raise error_from(where, reply["error"])
    check_status("POST", exchange.shown, exchange.result)
    if exchange.result.get("truncated"):
        raise InstructionError(f"{where}: the reply exceeded the response size limit")
    if not isinstance(reply, dict) or "result" not in reply:
        raise InstructionError(
            f"{where}: the reply is not a JSON-RPC response: {excerpt(reply)}",
            result=exchange.result,
        )
    if reply.get("id") != call_id:
        raise InstructionError(
            f"{where}: the reply's id {reply.get('id')!r} does not match the call's {call_id!r}",
            result=exchange.result,
        )
    return reply["result"]


def error_from(where: str, error: Any) -> InstructionError:
    """The ``InstructionError`` for a response's ``error`` member, classified by its code."""
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return instruction_error(
            f"{where}: error (not a JSON-RPC error object): {excerpt(error)}", result=error
        )
    code = error["code"]
    meaning = STANDARD_ERRORS.get(code) or (
        "server error" if code in SERVER_ERRORS else "application error"
    )
    text = f"{where}: error {code} ({meaning}): {excerpt(error.get('message', ''))}"
    if "data" in error:
        text += f"; data: {excerpt(error['data'])}"
    return instruction_error(text, "5xx" if code in SERVER_ERRORS else "error", result=error)
