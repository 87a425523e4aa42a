"""The message types of a gRPC method, found at run time: no generated stubs per task.

A task names a method (``package.Service/Method``); its request and response types come from
the server's reflection service (``grpc.reflection.v1alpha``, through grpcio-reflection's
descriptor database) or from a descriptor-set file named in the task (what
``protoc --descriptor_set_out --include_imports`` writes), as grpcurl finds them. This module
owns building a descriptor pool from either source, confining the files a task may name to
one directory (``DESCRIPTOR_DIR``: relative names, no way out, regular files of bounded
size), caching the file-based ones per process (keyed by path, size and modification time,
so an updated file is read again), and turning JSON into a request message and a response
message into JSON. The channel, and the pool that reflection fills through it, belong to
``grpc_unary``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from stat import S_ISREG
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from engine.errors import InstructionError
from engine.forksafe import fork_safe_dict
from engine.instructions import instruction_error
from engine.language.instruction_parser import descriptor_name_problem

_FILE_POOLS = fork_safe_dict()  # (path, size, mtime_ns) -> DescriptorPool
# The largest descriptor_set file read. protoc's output for a service and everything it
# imports (googleapis' annotations, the well-known types) is tens to hundreds of kB.
MAX_DESCRIPTOR_SET_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Method:
    """One unary method: its wire path and its message classes."""

    path: str  # "/package.Service/Method"
    input: type[Message]
    output: type[Message]


def file_pool(name: str, directory: str) -> descriptor_pool.DescriptorPool:
    """The descriptor pool of the FileDescriptorSet file ``name`` in ``directory``
    (``DESCRIPTOR_DIR``), read once per version of the file.

    A task file may name any path, so the file is confined: ``name`` is relative, stays
    inside ``directory`` once symbolic links are followed, is a regular file (not a FIFO or
    a device, which would block or never end) and holds at most ``MAX_DESCRIPTOR_SET_BYTES``.

    Raises:
        InstructionError: the file is refused, cannot be read or is not a FileDescriptorSet
            (final).
    """
    shown = f"descriptor_set {name!r}"
    path = _confined(name, directory, shown)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            stat = os.fstat(fd)  # of what was opened, not of what the name leads to now
            _check_file(stat, shown)
            key = (path, stat.st_size, stat.st_mtime_ns)
            if key not in _FILE_POOLS:
                _FILE_POOLS[key] = _pool(_read(fd, MAX_DESCRIPTOR_SET_BYTES + 1))
        finally:
            os.close(fd)
        return _FILE_POOLS[key]
    except (OSError, DecodeError, TypeError, KeyError) as exc:
        raise instruction_error(
            f"rpc: {shown} cannot be used: {exc}; write it with protoc "
            "--descriptor_set_out=FILE --include_imports"
        ) from exc


def _confined(name: str, directory: str, shown: str) -> str:
    """The real path of ``name`` in ``directory`` (``DESCRIPTOR_DIR``; "": the working
    directory). The loader refuses bad names already (``descriptor_name_problem``); asked
    again here for definitions built otherwise, and the disk answers the rest: a symbolic
    link may lead out of the directory."""
    refused = descriptor_name_problem(name)
    if refused is None:
        base = os.path.realpath(directory or ".")
        target = os.path.realpath(os.path.join(base, name))
        if os.path.commonpath([base, target]) == base:
            return target
        refused = "leads out of the descriptor directory (DESCRIPTOR_DIR) through a symbolic link"
    raise instruction_error(f"rpc: {shown} {refused}")


def _read(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit and (chunk := os.read(fd, min(1 << 20, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _check_file(stat: os.stat_result, shown: str) -> None:
    if not S_ISREG(stat.st_mode):
        raise instruction_error(f"rpc: {shown} is not a regular file")
    if stat.st_size > MAX_DESCRIPTOR_SET_BYTES:
        raise instruction_error(
            f"rpc: {shown} is larger than {MAX_DESCRIPTOR_SET_BYTES:,} bytes "
            f"({stat.st_size:,}): a descriptor set is not that large"
        )


def _pool(data: bytes) -> descriptor_pool.DescriptorPool:
    if len(data) > MAX_DESCRIPTOR_SET_BYTES:  # it grew since fstat
        raise OSError(f"the file is larger than {MAX_DESCRIPTOR_SET_BYTES:,} bytes")
    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        pool.Add(proto)
    return pool


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
