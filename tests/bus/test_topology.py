"""Records partitions in the topology: names, subjects and consumers; one partition is exactly
the topology Vigil had before partitions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vigil.bus.topology import (
    DETECTOR_RECORDS_CONSUMER,
    RECORDS_STREAM,
    ROUTER_CONSUMER,
    Topology,
    records_filter,
    records_stream,
    records_subject,
)
from vigil.settings import BusSettings


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching with `*` and a trailing `>`."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(want) == len(got)


def test_one_partition_is_the_topology_before_partitions() -> None:
    topology = Topology(BusSettings())
    assert topology.records_partitions == 1
    assert topology.records_streams() == [RECORDS_STREAM] == ["VIGIL_RECORDS"]
    records = [s for s in topology.streams() if (s.name or "").startswith(RECORDS_STREAM)]
    assert [(s.name, s.subjects) for s in records] == [("VIGIL_RECORDS", ["vigil.records.>"])]
    assert [s.name for s in topology.streams()] == [
        "VIGIL_RECORDS",
        "VIGIL_BATCHES",
        "VIGIL_OUTPUTS",
        "VIGIL_DELIVERIES",
        "VIGIL_SPANS",
        "VIGIL_INCIDENTS",
    ]
    assert records_subject("p1") == "vigil.records.p1"
    [router] = topology.router_consumers()
    assert router == topology.router_consumer()
    assert (router.stream, router.name, router.config.filter_subject) == (
        "VIGIL_RECORDS",
        "router",
        "vigil.records.>",
    )
    [detector] = topology.detector_records_consumers()
    assert detector == topology.detector_records_consumer()
    assert (detector.stream, detector.name, detector.config.filter_subject) == (
        "VIGIL_RECORDS",
        "detector-records",
        "vigil.records.>",
    )


def test_partitions_have_their_own_streams_subjects_and_consumers() -> None:
    settings = BusSettings(records_partitions=3, replicas=3, router_max_pending=32)
    topology = Topology(settings)
    assert topology.records_streams() == ["VIGIL_RECORDS", "VIGIL_RECORDS_1", "VIGIL_RECORDS_2"]
    assert [records_stream(k) for k in range(3)] == topology.records_streams()
    assert [records_subject("p1", k) for k in range(3)] == [
        "vigil.records.p1",
        "vigil.records1.p1",
        "vigil.records2.p1",
    ]
    streams = {s.name: s for s in topology.streams()}
    for k in range(3):
        stream = streams[records_stream(k)]
        assert stream.subjects == [records_filter(k)]
        assert stream.num_replicas == 3
        assert stream.max_bytes == settings.records_max_bytes
        assert stream.max_age == settings.records_max_age_s
    assert len(streams) == 8

    routers = topology.router_consumers()
    detectors = topology.detector_records_consumers()
    assert [c.stream for c in routers] == [c.stream for c in detectors] == topology.records_streams()
    assert {c.name for c in routers} == {ROUTER_CONSUMER}
    assert {c.name for c in detectors} == {DETECTOR_RECORDS_CONSUMER}
    assert all(c.config.max_ack_pending == 32 for c in routers)  # the window is per partition
    for k, consumer in enumerate(routers):
        assert consumer.config.filter_subject == streams[consumer.stream].subjects[0]
        assert consumer == topology.router_consumer(k)


@pytest.mark.parametrize("partition", [0, 1, 2, 9, 15])
def test_each_subject_is_in_its_own_partition_only_and_names_the_project(partition: int) -> None:
    topology = Topology(BusSettings(records_partitions=16))
    subject = records_subject("0f3c-project", partition)
    owners = [s.name for s in topology.streams() if any(subject_matches(p, subject) for p in s.subjects)]
    assert owners == [records_stream(partition)]
    # the router and the detector take the project from the subject this way
    assert subject.split(".", 2)[2] == "0f3c-project"


def test_partition_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        BusSettings(records_partitions=0)
    with pytest.raises(ValidationError):
        BusSettings(publish_failover_s=0)
    assert BusSettings().publish_failover_s == 1.0
