"""The ``rpc`` instruction: JSON-RPC 2.0 over HTTP POST, the only RPC protocol today.

It owns the JSON-RPC envelope: the request object (its ``id`` is the idempotency key, so a
server can recognise a retried call) and reading the response object. Sending, timeouts and
the classification of transport and status failures are ``engine.instructions.http``'s.
"""

from __future__ import annotations

from typing import Any

from engine.errors import InstructionError
from engine.instructions import ExecContext
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

SUPPORTED_PROTOCOLS = frozenset({"jsonrpc"})


class RpcExecutor:
    kind = "rpc"
    side_effects = True
    spec_type = RpcSpec

    def execute(self, spec: RpcSpec, ctx: ExecContext) -> Any:
        """Call ``spec.method`` with ``spec.params`` once.

        Returns:
            The response's ``result`` member.

        Raises:
            InstructionError: ``error_class="error"`` (not retryable) with the JSON-RPC
                ``error`` member as ``result`` when the server answered with an error; an
                unsupported protocol or a reply that is not JSON-RPC; otherwise as ``http``
                classifies transport and status failures.
        """
        if spec.protocol not in SUPPORTED_PROTOCOLS:
            raise InstructionError(
                f"rpc protocol {spec.protocol!r} is not supported: only 'jsonrpc' "
                "(JSON-RPC 2.0 over HTTP POST) is"
            )
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
    # account of what happened, and a server-declared error is not a transient failure.
    reply = exchange.result["body"]
    where = f"rpc {method!r} at {exchange.shown}"
    if isinstance(reply, dict) and "error" in reply:
        error = reply["error"]
        text = error.get("message", excerpt(error)) if isinstance(error, dict) else excerpt(error)
        code = f" {error['code']}" if isinstance(error, dict) and "code" in error else ""
        raise InstructionError(f"{where}: error{code}: {text}", result=error)
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


EXECUTOR = RpcExecutor()
