"""Real OpenTelemetry SDK log and trace pipelines pointed at a Vigil receiver, as users configure
them."""

from __future__ import annotations

import logging

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class OtelLogs:
    """A service's logger whose records go to Vigil through the SDK's OTLP exporter."""

    def __init__(
        self, service: str, *, api_key: str, http_url: str | None = None, grpc_target: str | None = None
    ) -> None:
        if http_url is not None:
            exporter = HttpLogExporter(endpoint=f"{http_url}/v1/logs", headers={"X-API-Key": api_key})
        elif grpc_target is not None:
            exporter = GrpcLogExporter(endpoint=grpc_target, insecure=True, headers=(("x-api-key", api_key),))
        else:
            raise ValueError("give http_url or grpc_target")
        resource = Resource.create({"service.name": service, "k8s.pod.name": f"{service}-abc123"})
        self.provider = LoggerProvider(resource=resource)
        self.provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=50))
        self.logger = logging.getLogger(f"otel.{service}.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=self.provider))

    def flush(self) -> None:
        assert self.provider.force_flush(10_000)

    def close(self) -> None:
        self.flush()
        self.provider.shutdown()


def span_exporter(
    *, api_key: str, http_url: str | None = None, grpc_target: str | None = None, gzip: bool = False
) -> SpanExporter:
    if http_url is not None:
        compression = Compression.Gzip if gzip else Compression.NoCompression
        return HttpSpanExporter(
            endpoint=f"{http_url}/v1/traces", headers={"X-API-Key": api_key}, compression=compression
        )
    if grpc_target is not None:
        return GrpcSpanExporter(endpoint=grpc_target, insecure=True, headers=(("x-api-key", api_key),))
    raise ValueError("give http_url or grpc_target")


class OtelTraces:
    """A service's tracer whose spans go to Vigil through the SDK's batching OTLP exporter; every
    finished span is also kept in memory, to compare with what Vigil stored."""

    def __init__(self, service: str, exporter: SpanExporter) -> None:
        self.finished = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.finished))
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
        self.tracer = self.provider.get_tracer("vigil-tests")

    def close(self) -> None:
        assert self.provider.force_flush(10_000)
        self.provider.shutdown()


def log_at(
    logs: OtelLogs, at_s: float, message: str, attributes: dict[str, object], level: int = logging.INFO
) -> None:
    """Log one record through the SDK handler with an explicit event time (epoch seconds), as a
    service replaying or batching its request logs would; attributes become OTLP record attributes."""
    record = logs.logger.makeRecord(logs.logger.name, level, __file__, 0, message, (), None, extra=attributes)
    record.created = at_s
    logs.logger.handle(record)
