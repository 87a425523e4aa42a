"""The ``rpc`` instruction: JSON-RPC 2.0 over HTTP POST, or a gRPC unary call.

This module only routes a spec to its protocol's module: ``jsonrpc`` (the envelope over the
``http`` transport) and ``grpc_unary`` (a call encoded through the server's reflection
service or a descriptor-set file, over a channel kept per worker process). What the runner
needs to know is the same for both: an attempt reaches the outside world (``side_effects``)
and answers one JSON value.
"""

from __future__ import annotations

from typing import Any

from engine.errors import InstructionError
from engine.instructions import ExecContext
from engine.instructions.rpc import jsonrpc
from engine.language.model import RpcSpec


class RpcExecutor:
    kind = "rpc"
    side_effects = True
    spec_type = RpcSpec

    def execute(self, spec: RpcSpec, ctx: ExecContext) -> Any:
        """Make one call with the spec's protocol.

        Returns:
            jsonrpc: the response's ``result`` member; grpc: the response message as JSON.

        Raises:
            InstructionError: an unknown protocol, or as the protocol's module says.
        """
        if spec.protocol == "jsonrpc":
            return jsonrpc.call(spec, ctx)
        if spec.protocol == "grpc":
            # Imported on first use: a worker that never calls gRPC never loads grpcio.
            from engine.instructions.rpc import grpc_unary

            return grpc_unary.call(spec, ctx)
        raise InstructionError(
            f"rpc protocol {spec.protocol!r} is not supported: use 'jsonrpc' (JSON-RPC 2.0 "
            "over HTTP POST) or 'grpc' (a unary call)"
        )


EXECUTOR = RpcExecutor()
