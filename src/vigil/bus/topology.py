"""Every stream, subject and consumer of Vigil, and their settings, in one place.

All streams use interest retention: a message stays until every consumer bound to it has acked
it, so nothing is dropped while it is unprocessed, and the stream's byte limit with
`discard: new` turns a backlog into backpressure (429 at the edge) instead of loss.

Spans are not routed to pipelines; they wait on VIGIL_SPANS for the `detector` consumer, bounded
by the stream's byte limit (trace exports then get 429, logs are unaffected) and by a short max
age (an hour by default): detection is a live view, so old spans are not worth a backlog.

Incident events from the detector go to VIGIL_INCIDENTS, where the pipeline router's
`incident-router` consumer hands them to the pipelines that take the `incident` kind.

Records can be spread over several streams, `records_partitions` of them: partition 0 is
VIGIL_RECORDS on `vigil.records.<project>` (the only one by default), partition k > 0 is
VIGIL_RECORDS_<k> on `vigil.records<k>.<project>`. On a cluster their leaders sit on different
nodes, so the loss of a node stops one partition while its leader is re-elected, and receivers
publish to the others meanwhile. The project is the third token of every records subject. The
router and the detector read every partition through a consumer of the same name on each.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from vigil.settings import BusSettings

RECORDS_STREAM = "VIGIL_RECORDS"
BATCHES_STREAM = "VIGIL_BATCHES"
OUTPUTS_STREAM = "VIGIL_OUTPUTS"
DELIVERIES_STREAM = "VIGIL_DELIVERIES"
SPANS_STREAM = "VIGIL_SPANS"
INCIDENTS_STREAM = "VIGIL_INCIDENTS"

ROUTER_CONSUMER = "router"
INCIDENT_ROUTER_CONSUMER = "incident-router"
SINK_ROUTER_CONSUMER = "sink-router"
DETECTOR_CONSUMER = "detector"
DETECTOR_RECORDS_CONSUMER = "detector-records"
CONFIG_SUBJECT = "vigil.control.config"
RECENT_QUERY_SUBJECT = "vigil.recent.query"
"""Core NATS (no stream): queries of the recent records windows, one reply per router process."""


def records_stream(partition: int = 0) -> str:
    """The stream of records partition `partition`."""
    return RECORDS_STREAM if partition == 0 else f"{RECORDS_STREAM}_{partition}"


def records_subject(project_id: str, partition: int = 0) -> str:
    """The subject of a project's records on partition `partition`."""
    return f"vigil.records.{project_id}" if partition == 0 else f"vigil.records{partition}.{project_id}"


def records_filter(partition: int = 0) -> str:
    """Every subject of records partition `partition`."""
    return records_subject(">", partition)


def spans_subject(project_id: str) -> str:
    return f"vigil.spans.{project_id}"


def incidents_subject(project_id: str) -> str:
    return f"vigil.incidents.{project_id}"


def batches_subject(project_id: str, pipeline: str) -> str:
    return f"vigil.batches.{project_id}.{pipeline}"


def workflow_events_subject(project_id: str) -> str:
    """Core NATS (no stream): a wake-up for the live streams when a workflow records a step."""
    return f"vigil.workflow.events.{project_id}"


WORKFLOW_START_SUBJECT = "vigil.workflow.start"
"""Core NATS (no stream): a process without the workflow engine (`vigil api`) stored incidents that
may need a workflow; the processes that run workflows look now rather than at their next sweep."""


def outputs_subject(project_id: str) -> str:
    return f"vigil.outputs.{project_id}"


def deliveries_subject(project_id: str, sink_id: str) -> str:
    return f"vigil.deliveries.{project_id}.{sink_id}"


def agent_consumer_name(project_id: str, pipeline: str) -> str:
    return f"agent-{project_id}-{pipeline}"


def sink_consumer_name(sink_id: str) -> str:
    return f"sink-{sink_id}"


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    config: ConsumerConfig

    @property
    def name(self) -> str:
        assert self.config.durable_name is not None
        return self.config.durable_name


@dataclass(frozen=True)
class Topology:
    settings: BusSettings

    @property
    def records_partitions(self) -> int:
        return self.settings.records_partitions

    def records_streams(self) -> list[str]:
        return [records_stream(k) for k in range(self.records_partitions)]

    def streams(self) -> list[StreamConfig]:
        s = self.settings
        records = [
            self._stream(records_stream(k), records_filter(k), s.records_max_bytes, s.records_max_age_s)
            for k in range(self.records_partitions)
        ]
        return [
            *records,
            self._stream(BATCHES_STREAM, "vigil.batches.>", s.batches_max_bytes, s.max_age_s),
            self._stream(OUTPUTS_STREAM, "vigil.outputs.>", s.outputs_max_bytes, s.max_age_s),
            self._stream(DELIVERIES_STREAM, "vigil.deliveries.>", s.outputs_max_bytes, s.max_age_s),
            self._stream(SPANS_STREAM, "vigil.spans.>", s.spans_max_bytes, s.spans_max_age_s),
            self._stream(INCIDENTS_STREAM, "vigil.incidents.>", s.outputs_max_bytes, s.max_age_s),
        ]

    def _stream(self, name: str, subject: str, max_bytes: int, max_age_s: float) -> StreamConfig:
        return StreamConfig(
            name=name,
            subjects=[subject],
            retention=RetentionPolicy.INTEREST,
            discard=DiscardPolicy.NEW,
            max_bytes=max_bytes,
            max_age=max_age_s,
            max_msg_size=self.settings.max_message_bytes,
            storage=StorageType.FILE,
            num_replicas=self.settings.replicas,
            duplicate_window=self.settings.duplicate_window_s,
        )

    def router_consumer(self, partition: int = 0) -> ConsumerSpec:
        """The router's consumer on one records partition; `router_max_pending` is per partition."""
        return self._consumer(
            records_stream(partition),
            ROUTER_CONSUMER,
            records_filter(partition),
            max_pending=self.settings.router_max_pending,
            max_deliver=self.settings.max_deliver,
        )

    def router_consumers(self) -> list[ConsumerSpec]:
        return [self.router_consumer(k) for k in range(self.records_partitions)]

    def incident_router_consumer(self) -> ConsumerSpec:
        return self._consumer(
            INCIDENTS_STREAM,
            INCIDENT_ROUTER_CONSUMER,
            "vigil.incidents.>",
            max_pending=256,
            max_deliver=self.settings.max_deliver,
        )

    def sink_router_consumer(self) -> ConsumerSpec:
        return self._consumer(
            OUTPUTS_STREAM,
            SINK_ROUTER_CONSUMER,
            "vigil.outputs.>",
            max_pending=1024,
            max_deliver=self.settings.max_deliver,
        )

    def detector_consumer(self) -> ConsumerSpec:
        return self._consumer(
            SPANS_STREAM,
            DETECTOR_CONSUMER,
            "vigil.spans.>",
            max_pending=64,
            max_deliver=self.settings.max_deliver,
        )

    def detector_records_consumer(self, partition: int = 0) -> ConsumerSpec:
        """Created by the detector when it starts, so records never wait on a detector that no
        deployment runs."""
        return self._consumer(
            records_stream(partition),
            DETECTOR_RECORDS_CONSUMER,
            records_filter(partition),
            max_pending=64,
            max_deliver=self.settings.max_deliver,
        )

    def detector_records_consumers(self) -> list[ConsumerSpec]:
        return [self.detector_records_consumer(k) for k in range(self.records_partitions)]

    def agent_consumer(
        self, project_id: str, pipeline: str, *, ack_wait_s: float, max_pending: int, max_attempts: int
    ) -> ConsumerSpec:
        return self._consumer(
            BATCHES_STREAM,
            agent_consumer_name(project_id, pipeline),
            batches_subject(project_id, pipeline),
            max_pending=max_pending,
            ack_wait_s=ack_wait_s,
            max_deliver=max_attempts + 3,
        )

    def sink_consumer(
        self, project_id: str, sink_id: str, *, ack_wait_s: float, max_attempts: int
    ) -> ConsumerSpec:
        return self._consumer(
            DELIVERIES_STREAM,
            sink_consumer_name(sink_id),
            deliveries_subject(project_id, sink_id),
            max_pending=64,
            ack_wait_s=ack_wait_s,
            max_deliver=max_attempts + 3,
        )

    def _consumer(
        self,
        stream: str,
        name: str,
        subject: str,
        *,
        max_pending: int,
        max_deliver: int,
        ack_wait_s: float | None = None,
    ) -> ConsumerSpec:
        # Retries are paced by the deliverers (nak with a delay) and end in Vigil's dead-letter
        # store at the configured attempt count; the bus-level bound sits a little above it, a
        # guard against a message that crashes its worker.
        return ConsumerSpec(
            stream,
            ConsumerConfig(
                durable_name=name,
                name=name,
                filter_subject=subject,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait_s or self.settings.ack_wait_s,
                max_deliver=max_deliver,
                max_ack_pending=max_pending,
            ),
        )
