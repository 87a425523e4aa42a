"""A real gRPC server for the rpc tests: a stock service defined from a descriptor built here
(no .proto, no generated code), with the reflection and health services, in this process.

``Stock/Reserve`` answers a reservation that echoes the metadata it saw; it aborts with
NOT_FOUND for the sku ``missing``, with UNAVAILABLE while ``unavailable_left`` is above zero
(then succeeds), and answers ``Stock/Level`` with the level set in ``levels``.
"""

from __future__ import annotations

import socket
import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

PACKAGE = "inventory.v1"
SERVICE = f"{PACKAGE}.Stock"
FILE_NAME = "inventory/v1/stock.proto"


def file_proto() -> descriptor_pb2.FileDescriptorProto:
    """The service's .proto as a descriptor: what ``protoc`` would make of it."""
    proto = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto3")
    string, int32 = (descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                     descriptor_pb2.FieldDescriptorProto.TYPE_INT32)
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    for name, fields in {
        "ReserveRequest": [("sku", string), ("quantity", int32)],
        "Reservation": [("id", string), ("sku", string), ("quantity", int32),
                        ("idempotency_key", string), ("authorization", string)],
        "LevelRequest": [("sku", string)],
        "Level": [("sku", string), ("on_hand", int32)],
    }.items():
        message = proto.message_type.add(name=name)
        for number, (field_name, kind) in enumerate(fields, start=1):
            message.field.add(name=field_name, number=number, type=kind, label=optional)
    service = proto.service.add(name="Stock")
    service.method.add(name="Reserve", input_type=f".{PACKAGE}.ReserveRequest",
                       output_type=f".{PACKAGE}.Reservation")
    service.method.add(name="Level", input_type=f".{PACKAGE}.LevelRequest",
                       output_type=f".{PACKAGE}.Level")
    return proto


def write_descriptor_set(path) -> str:
    """The file ``protoc --descriptor_set_out=path --include_imports`` would write."""
    path.write_bytes(descriptor_pb2.FileDescriptorSet(file=[file_proto()]).SerializeToString())
    return str(path)


def _classes() -> dict[str, type]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(FILE_NAME)
    except KeyError:
        pool.Add(file_proto())  # the default pool: reflection serves it beside health's
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in ("ReserveRequest", "Reservation", "LevelRequest", "Level")}


@dataclass
class StockServer:
    """A running server; ``target`` is its ``127.0.0.1:port``."""

    port: int
    reflection: bool = True
    tls: tuple[bytes, bytes] | None = None  # (private key, certificate) PEM: serve TLS
    unavailable_left: int = 0
    levels: dict[str, int] = field(default_factory=dict)
    calls: list[dict] = field(default_factory=list)
    server: grpc.Server | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> StockServer:
        types = _classes()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "Reserve": grpc.unary_unary_rpc_method_handler(
                self._reserve, request_deserializer=types["ReserveRequest"].FromString,
                response_serializer=lambda m: m.SerializeToString()),
            "Level": grpc.unary_unary_rpc_method_handler(
                self._level, request_deserializer=types["LevelRequest"].FromString,
                response_serializer=lambda m: m.SerializeToString()),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        health_servicer = health.HealthServicer()
        health_servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        if self.reflection:
            reflection.enable_server_reflection(
                (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        if self.tls:
            server.add_secure_port(self.target, grpc.ssl_server_credentials([self.tls]))
        else:
            server.add_insecure_port(self.target)
        server.start()
        self.server, self.types = server, types
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait(5)
            self.server = None

    def _reserve(self, request, context):
        metadata = dict(context.invocation_metadata())
        with self.lock:
            self.calls.append({"sku": request.sku, "metadata": metadata})
            if self.unavailable_left > 0:
                self.unavailable_left -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        if request.sku == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, f"no sku {request.sku!r}")
        return self.types["Reservation"](
            id=f"r-{request.sku}-{request.quantity}", sku=request.sku, quantity=request.quantity,
            idempotency_key=metadata.get("idempotency-key", ""),
            authorization=metadata.get("authorization", ""))

    def _level(self, request, context):
        return self.types["Level"](sku=request.sku, on_hand=self.levels.get(request.sku, 0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
