from __future__ import annotations

import json

from tests.detect.test_signals import LOOP, ORDER, quiet
from tests.detect.traffic import T0, Pipeline
from vigil.detect.incidents import Correlator, IncidentConfig
from vigil.detect.signals import Evidence, Severity, Signal, SignalKind, fingerprint

CONFIG = IncidentConfig(join_window_s=120, quiet_period_s=300, cooldown_s=900)


def signal(
    kind: SignalKind,
    minute: int,
    *,
    service: str = "shop",
    subject: str = "GET /orders/{id}",
    traces: tuple[str, ...] = (),
    severity: Severity = Severity.WARNING,
    value: float = 2.0,
) -> Signal:
    start = T0 + 60 * minute
    return Signal(
        kind=kind,
        severity=severity,
        project="p",
        service=service,
        endpoint=subject,
        window_start=start,
        window_end=start + 60,
        fingerprint=fingerprint(kind, "p", service, subject),
        title=f"{kind.value} {service} {subject} at {value}",
        value=value,
        threshold=1.0,
        evidence=Evidence(trace_ids=list(traces)),
    )


def at(minute: int) -> float:
    return T0 + 60 * minute + 65


def test_signals_of_one_service_and_time_make_one_incident() -> None:
    c = Correlator(CONFIG)
    events = c.observe(
        [
            signal(SignalKind.SLOW_ENDPOINT, 0),
            signal(SignalKind.SLOW_QUERY, 0, subject=ORDER, severity=Severity.CRITICAL),
        ],
        at(0),
    )
    assert [e.type for e in events] == ["opened"]
    incident = events[0].incident
    assert len(incident.signals) == 2 and incident.severity is Severity.CRITICAL
    assert incident.title.startswith("slow_query") and incident.title.endswith("(+1 related)")
    assert incident.services == ["shop"] and len(c.incidents) == 1
    # a related signal a minute later joins it
    later = c.observe([signal(SignalKind.ERROR_RATE_SPIKE, 1)], at(1))
    assert [(e.type, e.incident.id) for e in later] == [("updated", incident.id)]
    assert [t.event for t in later[0].incident.timeline] == ["opened", "signal", "signal"]


def test_trace_ids_join_signals_across_services() -> None:
    c = Correlator(CONFIG)
    linked = c.observe(
        [
            signal(SignalKind.SLOW_ENDPOINT, 0, service="frontend", traces=("t1", "t2")),
            signal(SignalKind.SLOW_QUERY, 0, service="orders-db", subject=ORDER, traces=("t9", "t2")),
        ],
        at(0),
    )
    assert len(linked) == 1 and sorted(linked[0].incident.services) == ["frontend", "orders-db"]
    # across calls too: an open incident is found by one of its traces
    more = c.observe([signal(SignalKind.ERROR_RATE_SPIKE, 1, service="payments", traces=("t1",))], at(1))
    assert [e.type for e in more] == ["updated"] and len(c.incidents) == 1

    apart = Correlator(CONFIG).observe(
        [
            signal(SignalKind.SLOW_ENDPOINT, 0, service="frontend", traces=("t1",)),
            signal(SignalKind.SLOW_QUERY, 0, service="orders-db", subject=ORDER, traces=("t9",)),
        ],
        at(0),
    )
    assert [e.type for e in apart] == ["opened", "opened"]


def test_recurring_signal_keeps_one_incident_then_resolves_and_reopens() -> None:
    c = Correlator(CONFIG)
    events = []
    for minute in range(10):
        events += c.observe(
            [signal(SignalKind.LATENCY_REGRESSION, minute, value=2 + minute / 10)], at(minute)
        )
    assert [e.type for e in events] == ["opened"]  # recurrence is silent
    (incident,) = c.incidents
    assert incident.title == events[0].incident.title  # and does not retitle the incident
    assert incident.occurrences == {incident.signals[0].fingerprint: 10}
    assert c.observe([], at(9) + 299) == []
    resolved = c.tick(at(9) + 300)
    assert [(e.type, e.incident.id, e.incident.status) for e in resolved] == [
        ("resolved", incident.id, "resolved")
    ]
    # back within the cooldown: the same incident, reopened
    back = c.observe([signal(SignalKind.LATENCY_REGRESSION, 20)], at(20))
    assert [(e.type, e.incident.id) for e in back] == [("reopened", incident.id)]
    assert back[0].incident.reopened == 1 and back[0].incident.status == "open"
    # resolved again, then back after the cooldown: a new incident
    c.tick(at(20) + 300)
    assert c.tick(at(20) + 300 + 901) == [] and c.incidents == []
    fresh = c.observe([signal(SignalKind.LATENCY_REGRESSION, 60)], at(60))
    assert [e.type for e in fresh] == ["opened"] and fresh[0].incident.id != incident.id


def test_escalation_updates_and_events_are_snapshots() -> None:
    c = Correlator(CONFIG)
    opened = c.observe([signal(SignalKind.ERROR_RATE_SPIKE, 0)], at(0))
    escalated = c.observe(
        [signal(SignalKind.ERROR_RATE_SPIKE, 1, severity=Severity.CRITICAL, value=9)], at(1)
    )
    assert [e.type for e in escalated] == ["updated"]
    assert escalated[0].incident.severity is Severity.CRITICAL
    assert opened[0].incident.severity is Severity.WARNING  # the earlier event did not change
    assert escalated[0].incident.timeline[-1].event == "escalated"
    assert c.observe([signal(SignalKind.ERROR_RATE_SPIKE, 2, value=1.2)], at(2)) == []
    assert c.incidents[0].severity is Severity.CRITICAL  # not downgraded while open


def test_state_round_trip_continues_the_same_incidents() -> None:
    c = Correlator(CONFIG)
    (opened,) = c.observe([signal(SignalKind.N_PLUS_ONE, 0, subject="GET /a", traces=("t1",))], at(0))
    c.observe([signal(SignalKind.SLOW_ENDPOINT, 0, service="other")], at(0))
    restored = Correlator.from_state(json.loads(json.dumps(c.state())), CONFIG)
    assert [i.model_dump() for i in restored.incidents] == [i.model_dump() for i in c.incidents]
    assert restored.observe([signal(SignalKind.N_PLUS_ONE, 1, subject="GET /a")], at(1)) == []  # recurrence
    linked = restored.observe([signal(SignalKind.SLOW_QUERY, 30, service="db", traces=("t1",))], at(2))
    assert [(e.type, e.incident.id) for e in linked] == [("updated", opened.incident.id)]


def test_bounded_open_incidents() -> None:
    c = Correlator(IncidentConfig(max_open=3))
    for i in range(5):
        c.observe([signal(SignalKind.SLOW_ENDPOINT, 0, service=f"s{i}")], at(0))
    assert len(c.open_incidents) == 3


def test_a_regression_end_to_end_is_one_incident_that_resolves() -> None:
    slow = quiet(queries=[(ORDER, 700.0, 1), (LOOP, 4.0, 1)])
    pipeline = Pipeline(seed=11, incident_config=IncidentConfig(quiet_period_s=300))
    pipeline.windows(30, [quiet()])
    pipeline.windows(8, [slow])
    pipeline.windows(10, [quiet()])
    run = pipeline.finish()
    kinds = {s.kind for s in run.all_signals()}
    assert kinds == {SignalKind.SLOW_QUERY, SignalKind.LATENCY_REGRESSION, SignalKind.SLOW_ENDPOINT}
    assert [i for i, batch in enumerate(run.signals) if batch] == list(range(30, 38))
    assert [e.type for e in run.events] == ["opened", "resolved"]
    opened, resolved = run.events
    assert resolved.incident.id == opened.incident.id
    assert {s.kind for s in resolved.incident.signals} == kinds
    assert resolved.incident.occurrences and max(resolved.incident.occurrences.values()) == 8


def test_a_recurrence_announces_nothing_but_is_there_to_store() -> None:
    c = Correlator(CONFIG)
    [opened] = c.observe([signal(SignalKind.SLOW_ENDPOINT, 0)], at(0))
    assert c.take_recurred() == []
    assert c.observe([signal(SignalKind.SLOW_ENDPOINT, 1)], at(1)) == []
    [stored] = c.take_recurred()
    assert stored.id == opened.incident.id and stored.last_window_end == T0 + 120
    assert next(iter(stored.occurrences.values())) == 2
    assert c.take_recurred() == []  # taken once
