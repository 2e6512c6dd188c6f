"""Where agent outputs go. A sink type is one module plus one line in `SINK_TYPES`."""

from __future__ import annotations

import httpx

from vigil.sinks.base import Sink, SinkFactory
from vigil.sinks.slack import SlackSink
from vigil.sinks.webhook import WebhookSink
from vigil.specs import SinkSpec

SINK_TYPES: dict[str, SinkFactory] = {
    "webhook": WebhookSink.from_spec,
    "slack": SlackSink.from_spec,
}


def build_sink(spec: SinkSpec, client: httpx.AsyncClient) -> Sink:
    """A sink for `spec` that sends through `client`, which the caller owns and closes."""
    try:
        factory = SINK_TYPES[spec.type]
    except KeyError:
        raise ValueError(f"unknown sink type {spec.type!r}; known: {', '.join(sorted(SINK_TYPES))}") from None
    return factory(spec, client)


__all__ = ["SINK_TYPES", "Sink", "SinkFactory", "SlackSink", "WebhookSink", "build_sink"]
