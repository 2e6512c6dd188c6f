"""Incident events as bus notices and as the flat records pipelines route."""

from __future__ import annotations

from tests.detect.test_incidents import CONFIG, at, signal
from vigil.detect.incidents import Correlator
from vigil.detect.notices import INCIDENT_KIND, IncidentNotice
from vigil.detect.signals import Evidence, Severity, SignalKind
from vigil.pipeline.filters import RecordFilter
from vigil.specs import FilterSpec


def opened(*, severity: Severity = Severity.WARNING) -> IncidentNotice:
    correlator = Correlator(CONFIG)
    slow = signal(SignalKind.SLOW_ENDPOINT, 0, traces=("a" * 32,), severity=severity)
    slow = slow.model_copy(
        update={"evidence": Evidence(trace_ids=["a" * 32], records=[{"body": "x" * 10_000}])}
    )
    [event] = correlator.observe(
        [slow, signal(SignalKind.ERROR_RATE_SPIKE, 0, service="cart", traces=("a" * 32,))], at(0)
    )
    return IncidentNotice.of(event)


def test_a_notice_is_a_compact_snapshot_with_a_stable_id() -> None:
    notice = opened()
    assert notice.event == "opened" and notice.project == "p" and notice.status == "open"
    assert {s.kind for s in notice.signals} == {SignalKind.SLOW_ENDPOINT, SignalKind.ERROR_RATE_SPIKE}
    assert len(notice.model_dump_json()) < 2_000  # evidence stays in the API, not on the bus
    again = IncidentNotice.model_validate_json(notice.model_dump_json())
    assert again == notice and again.msg_id == notice.msg_id
    assert notice.msg_id.startswith(f"incident:{notice.id}:opened:")


def test_a_notice_becomes_an_agent_protocol_record() -> None:
    notice = opened(severity=Severity.CRITICAL)
    record = notice.record()
    assert record["kind"] == INCIDENT_KIND
    assert set(record) >= {
        "resourceAttributes",
        "severityNumber",
        "severityText",
        "body",
        "attributes",
        "traceId",
        "spanId",
        "timestamp",
    }
    assert record["severityNumber"] == 17 and record["severityText"] == "ERROR"
    assert record["resourceAttributes"]["service.name"] in notice.services
    assert record["body"] == f"Incident opened: {notice.title}"
    assert record["traceId"] == "a" * 32
    assert record["timestamp"].endswith("Z")
    assert record["attributes"]["vigil.incident.services"] == notice.services
    assert record["attributes"]["vigil.incident.signal_kinds"] == ["error_rate_spike", "slow_endpoint"]
    assert "project" not in record["incident"] and record["incident"]["id"] == notice.id


def test_filters_choose_by_kind_then_by_the_usual_conditions() -> None:
    notice = opened()
    record = notice.record()

    def accepts(**spec: object) -> bool:
        return RecordFilter(FilterSpec.model_validate(spec)).accepts_incident(record, notice.services)

    assert not accepts()  # logs only, unless asked
    assert accepts(kinds=["incident"])
    assert accepts(kinds=["log", "incident"], services=["cart"])  # any of the incident's services
    assert not accepts(kinds=["incident"], services=["search"])
    assert not accepts(kinds=["incident"], min_severity="ERROR")  # a warning
    assert accepts(kinds=["incident"], min_severity="WARN")
    assert accepts(kinds=["incident"], attributes={"vigil.incident.event": {"in": ["opened", "reopened"]}})
    assert not accepts(kinds=["incident"], attributes={"vigil.incident.event": "resolved"})
    assert accepts(kinds=["incident"], body={"contains": "Incident opened"})
    assert not RecordFilter(FilterSpec.model_validate({"kinds": ["incident"]})).takes_logs
    assert FilterSpec.model_validate({"kinds": ["incident", "log", "incident"]}).kinds == ["incident", "log"]
