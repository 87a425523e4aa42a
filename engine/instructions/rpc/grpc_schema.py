"""The message types of a gRPC method, found at run time: no generated stubs per task.

A task names a method (``package.Service/Method``); its request and response types come from
the server's reflection service (``grpc.reflection.v1alpha``, through grpcio-reflection's
descriptor database) or from a descriptor-set file named in the task (what
``protoc --descriptor_set_out --include_imports`` writes), as grpcurl finds them. This module
owns building a descriptor pool from either source, caching the file-based ones per process
(keyed by path, size and modification time, so an updated file is read again), and turning
JSON into a request message and a response message into JSON. The channel, and the pool
that reflection fills through it, belong to ``grpc_unary``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from engine.errors import InstructionError
from engine.forksafe import fork_safe_dict
from engine.instructions import instruction_error

_FILE_POOLS = fork_safe_dict()  # (path, size, mtime_ns) -> DescriptorPool


@dataclass(frozen=True, slots=True)
class Method:
    """One unary method: its wire path and its message classes."""

    path: str  # "/package.Service/Method"
    input: type[Message]
    output: type[Message]


def file_pool(path: str) -> descriptor_pool.DescriptorPool:
    """The descriptor pool of a FileDescriptorSet file, read once per version of the file.

    Raises:
        InstructionError: the file cannot be read or is not a FileDescriptorSet (final).
    """
    try:
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in _FILE_POOLS:
            with open(path, "rb") as file:
                files = descriptor_pb2.FileDescriptorSet.FromString(file.read()).file
            pool = descriptor_pool.DescriptorPool()
            for proto in files:
                pool.Add(proto)
            _FILE_POOLS[key] = pool
        return _FILE_POOLS[key]
    except (OSError, DecodeError, TypeError, KeyError) as exc:
        raise instruction_error(
            f"rpc: descriptor_set {path!r} cannot be used: {exc}; write it with protoc "
            "--descriptor_set_out=FILE --include_imports"
        ) from exc


def find_method(pool: descriptor_pool.DescriptorPool, name: str, source: str) -> Method:
    """The method ``name`` (``package.Service/Method``) in ``pool``.

    ``source`` says where the pool comes from, for messages. A gRPC failure while reflection
    fills the pool (``grpc.RpcError``) is let through for the caller to classify.

    Raises:
        InstructionError: the service or the method is unknown to the source (final).
    """
    service_name, _, method_name = name.lstrip("/").partition("/")
    try:
        service = pool.FindServiceByName(service_name)
    except KeyError:
        raise instruction_error(
            f"rpc: {source} does not know the service {service_name!r}"
        ) from None
    method = service.methods_by_name.get(method_name)
    if method is None:
        known = ", ".join(sorted(service.methods_by_name)) or "none"
        raise instruction_error(
            f"rpc: service {service_name!r} has no method {method_name!r} (it has: {known})"
        )
    if method.client_streaming or method.server_streaming:
        raise instruction_error(f"rpc: {name} is a streaming method; only unary calls are made")
    return Method(
        path=f"/{service_name}/{method_name}",
        input=message_factory.GetMessageClass(method.input_type),
        output=message_factory.GetMessageClass(method.output_type),
    )


def to_message(method: Method, request: Any, name: str) -> Message:
    """The request message from JSON (field names as in the .proto, or in lowerCamelCase).

    Raises:
        InstructionError: the JSON does not fit the request type (final).
    """
    try:
        return json_format.ParseDict(request or {}, method.input())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise InstructionError(
            f"rpc {name}: the request does not fit {method.input.DESCRIPTOR.full_name}: {exc}"
        ) from exc


def to_json(message: Message) -> dict[str, Any]:
    """The response as JSON: the .proto's field names, every field present (a predicate can
    test a zero or an enum's first value), 64-bit integers as JSON strings (protobuf's JSON
    mapping)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
