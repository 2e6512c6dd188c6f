"""OTLP/gRPC receiver: `LogsService/Export` and `TraceService/Export`, authenticated by
`x-api-key` (or bearer) metadata.

Requests arrive as raw bytes and go through the same ingest path as OTLP/HTTP protobuf, so the
bytes a client sent are what the bus stores.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from vigil.errors import Backpressure, PayloadTooLarge, TransientError, Unauthorized, UserError
from vigil.otlp import PROTOBUF, SIGNALS, Signal
from vigil.receivers.ingest import Ingestor
from vigil.receivers.keys import KeyResolver, key_from_headers

log = logging.getLogger(__name__)


def _status_with_retry(code: grpc.StatusCode, message: str, retry_after: float) -> tuple[str, bytes]:
    """OTLP clients retry RESOURCE_EXHAUSTED only when the status carries RetryInfo."""
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=max(1, round(retry_after))))
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return "grpc-status-details-bin", status.SerializeToString()


class OtlpGrpcReceiver:
    def __init__(
        self, ingestor: Ingestor, keys: KeyResolver, *, host: str, port: int, max_message_bytes: int
    ) -> None:
        self._ingestor = ingestor
        self._keys = keys
        self._address = f"{host}:{port}"
        self._max = max_message_bytes
        self._server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self._max),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ]
        )
        server.add_generic_rpc_handlers(tuple(self._handler(signal) for signal in SIGNALS))
        self.port = server.add_insecure_port(self._address)
        if self.port == 0:
            raise RuntimeError(f"could not bind the OTLP/gRPC receiver to {self._address}")
        await server.start()
        self._server = server
        log.info("OTLP/gRPC receiver listening", extra={"address": self._address, "port": self.port})

    async def shutdown(self, grace_s: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace_s)

    def _handler(self, signal: Signal) -> grpc.GenericRpcHandler:
        empty_response: bytes = signal.response().SerializeToString()

        async def export(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            await self._export(signal, request, context)
            return empty_response

        return grpc.method_handlers_generic_handler(
            signal.grpc_service, {"Export": grpc.unary_unary_rpc_method_handler(export)}
        )

    async def _export(
        self, signal: Signal, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        metadata = {k.lower(): v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        try:
            key = key_from_headers(metadata.get("x-api-key"), metadata.get("authorization"))
            project_id = await self._keys.project_for(key)
            async with self._ingestor.admit(signal, "grpc") as claim:
                claim.take(len(request))
                await self._ingestor.export(
                    signal, project_id, request, content_type=PROTOBUF, transport="grpc", claim=claim
                )
        except Unauthorized as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)
        except PayloadTooLarge as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except Backpressure as exc:
            context.set_trailing_metadata(
                [_status_with_retry(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message, exc.retry_after)]
            )
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message)
        except TransientError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message)
        except UserError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
