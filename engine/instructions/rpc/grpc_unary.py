"""gRPC unary calls: one channel per connection and worker process, statuses mapped to the
engine's error classes.

A task names a connection (``ASYNC_STATES_CONNECTION_<NAME>=grpc://host:port``, or
``grpcs://`` for TLS with the system's root certificates), a full method name, a JSON request
and metadata. This module owns:

- the channel: opened on first use in a process, shared by every attempt and thread there,
  dropped after UNAVAILABLE (the next attempt opens a new one) and forgotten in a forked child
  (``engine.connections.Cache``). The channel's own retries are off: the instruction's retry
  policy is the one that retries, and history counts every attempt.
- the call: the attempt's timeout is the call's deadline (sent to the server as
  ``grpc-timeout``), the idempotency key travels as the ``idempotency-key`` metadata entry,
  reflection lookups are bounded by the same deadline, and a response larger than the
  runner keeps (``MAX_RESULT_BYTES``) is refused by the channel before it is decoded.
- the mapping of a status to an error class: UNAVAILABLE -> ``connection``,
  DEADLINE_EXCEEDED -> ``timeout``, RESOURCE_EXHAUSTED -> ``429``, ABORTED -> ``conflict``
  (retryable by the default policy); every other status -> ``status`` (final unless the
  policy's ``retry_on`` names ``status`` or ``error``). An UNAVAILABLE whose details say the
  server's TLS certificate failed verification is a final ``error``, as ``http`` makes it:
  the same certificate fails the same way next time. The status's code and details are in
  the attempt's error.

Messages name the connection, never its URL. Finding the message types is
``grpc_schema``'s.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from engine import connections
from engine.errors import InstructionError
from engine.forksafe import fork_safe_local
from engine.instructions import ExecContext, certificate_error, instruction_error
from engine.instructions.rpc import grpc_schema
from engine.language.model import RpcSpec

# Status -> error class for the statuses worth another attempt; the rest are "status".
ERROR_CLASSES = {
    grpc.StatusCode.UNAVAILABLE: "connection",
    grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "429",
    grpc.StatusCode.ABORTED: "conflict",
}
IDEMPOTENCY_METADATA = "idempotency-key"
_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (("grpc.enable_retries", 0),)
# How gRPC words the status of a response over max_receive_message_length.
_TOO_LARGE = "Received message larger than max"
# How gRPC words, in the details of an UNAVAILABLE, a server certificate that did not verify
# (BoringSSL's reason for an untrusted or expired one; gRPC's own host name check).
_UNVERIFIED = ("CERTIFICATE_VERIFY_FAILED", "is not in peer certificate")

_attempt = fork_safe_local()  # .timeout: the deadline of the attempt running on this thread


@dataclass(slots=True)
class _Target:
    """An open channel for calls, and the reflection channel beside it (opened when first
    needed, without the calls' response size limit: a service's descriptors are not a
    result) with what reflection has told us."""

    address: str
    credentials: grpc.ChannelCredentials | None
    channel: grpc.Channel
    reflection: grpc.Channel | None = None
    methods: dict[str, grpc_schema.Method] = field(default_factory=dict)
    pool: descriptor_pool.DescriptorPool | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        self.channel.close()
        if self.reflection is not None:
            self.reflection.close()


_CHANNELS: connections.Cache[_Target] = connections.Cache(close=_Target.close)


def call(spec: RpcSpec, ctx: ExecContext) -> Any:
    """Make one unary call of ``spec.method`` on the spec's connection.

    Returns:
        The response message as JSON (``grpc_schema.to_json``).

    Raises:
        InstructionError: a status from the server or the channel (see the module
            docstring); a connection that is not configured or not grpc; a method or
            request that the schema refuses (final).
    """
    name = str(spec.connection)
    url = connections.url_of(name)
    connections.check_serves(name, url, "grpc")
    key = (name, url, ctx.max_result_bytes)
    target = _CHANNELS.get(key, lambda: _open(url, ctx.max_result_bytes))
    label = f"connection '{name}'"
    _attempt.timeout = ctx.timeout
    try:
        method = _method(target, spec, label, ctx.descriptor_dir)
        request = grpc_schema.to_message(method, ctx.render(spec.request), spec.method)
        stub = target.channel.unary_unary(
            method.path,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=method.output.FromString,
        )
        response = stub(request, timeout=ctx.timeout, metadata=_metadata(spec, ctx))
    except grpc.RpcError as exc:
        error = status_error(f"rpc {spec.method} on {label}", exc, url, label)
        if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.UNAVAILABLE:
            # Refused, lost or not verified: the next attempt gets a new channel, which
            # connects at once instead of after the old one's reconnect backoff.
            _CHANNELS.discard(key, target)
        raise error from exc
    return grpc_schema.to_json(response)


def status_error(where: str, exc: grpc.RpcError, url: str, label: str) -> InstructionError:
    """The ``InstructionError`` for a failed call, classified by its status code."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or ""
    details = connections.scrub(details, url, label)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in details:
        return instruction_error(  # our own limit, not the server's load: final
            f"{where}: the response is larger than the limit on instruction results "
            f"(MAX_RESULT_BYTES): {details}",
            result={"code": code.name, "details": details},
        )
    if code == grpc.StatusCode.UNAVAILABLE and any(m in details for m in _UNVERIFIED):
        return certificate_error(where, details)
    error_class = ERROR_CLASSES.get(code, "status")
    return instruction_error(
        f"{where}: {code.name}: {details or 'no details'}",
        error_class,
        result={"code": code.name, "details": details},
    )


def _open(url: str, max_result_bytes: int) -> _Target:
    parts = urlsplit(url)
    secure = parts.scheme == "grpcs"
    address = f"{parts.hostname}:{parts.port or (443 if secure else 50051)}"
    credentials = grpc.ssl_channel_credentials() if secure else None
    options = _CHANNEL_OPTIONS
    if max_result_bytes > 0:
        options += (("grpc.max_receive_message_length", max_result_bytes),)
    return _Target(address, credentials, _channel(address, credentials, options))


def _channel(
    address: str, credentials: grpc.ChannelCredentials | None, options: tuple
) -> grpc.Channel:
    if credentials is not None:
        return grpc.secure_channel(address, credentials, options=options)
    return grpc.insecure_channel(address, options=options)


def _method(
    target: _Target, spec: RpcSpec, label: str, descriptor_dir: str
) -> grpc_schema.Method:
    if spec.descriptor_set is not None:
        pool = grpc_schema.file_pool(spec.descriptor_set, descriptor_dir)
        return grpc_schema.find_method(pool, spec.method, f"descriptor_set {spec.descriptor_set!r}")
    found = target.methods.get(spec.method)
    if found is not None:
        return found
    with target.lock:  # one reflection conversation per channel at a time
        if target.pool is None:
            if target.reflection is None:
                target.reflection = _channel(target.address, target.credentials, _CHANNEL_OPTIONS)
            reflection = grpc.intercept_channel(target.reflection, _ReflectionDeadline())
            target.pool = descriptor_pool.DescriptorPool(
                ProtoReflectionDescriptorDatabase(reflection)
            )
        try:
            found = grpc_schema.find_method(target.pool, spec.method, f"reflection on {label}")
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise instruction_error(
                    f"rpc {spec.method} on {label}: the server has no reflection service; "
                    "name a descriptor_set file for its methods"
                ) from exc
            target.pool = None  # it may hold half an answer
            raise
        target.methods[spec.method] = found
    return found


def _metadata(spec: RpcSpec, ctx: ExecContext) -> list[tuple[str, str]]:
    # gRPC metadata keys are lower-case ASCII; values here are text (no "-bin" keys).
    rendered = {str(k).lower(): str(v) for k, v in (ctx.render(dict(spec.metadata)) or {}).items()}
    rendered.setdefault(IDEMPOTENCY_METADATA, ctx.idempotency_key)
    return list(rendered.items())


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """Call details with a deadline (grpcio's reflection client sets none)."""


class _ReflectionDeadline(grpc.StreamStreamClientInterceptor):
    """Gives reflection calls the deadline of the attempt that needs them: a server that
    accepts the call and never answers would otherwise hold the worker forever."""

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        details = _Details(
            client_call_details.method,
            getattr(_attempt, "timeout", None) or client_call_details.timeout,
            client_call_details.metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
            client_call_details.compression,
        )
        return continuation(details, request_iterator)
