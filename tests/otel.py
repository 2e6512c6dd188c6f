"""Real OpenTelemetry SDK log pipelines pointed at a Vigil receiver, as users configure them."""

from __future__ import annotations

import logging

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource


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
