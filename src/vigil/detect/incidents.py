"""Correlation of signals into incidents, with a lifecycle that does not flap.

`Correlator.observe(signals, now)` first groups the batch (signals sharing a fingerprint, a trace id,
or a project and service within `join_window_s` of each other), then gives each group an incident:

1. the incident that already holds one of the group's fingerprints: recurring problems stay in
   their incident, and a resolved incident whose fingerprint comes back within `cooldown_s` of its
   resolution is reopened rather than a new one opened;
2. else an open incident sharing a trace id with the group (a slow endpoint in one service and the
   slow query under it in another);
3. else an open incident of the same project and service whose signals are within `join_window_s`;
4. else a new incident.

An open incident with no signal for `quiet_period_s` (of `now`) resolves. Each call returns at most
one event per incident: opened, reopened, updated (a new signal kind or fingerprint, a new service, a
higher severity) or resolved; mere recurrence updates the incident silently. Call it on every window
close, with no signals when there are none, so quiet incidents resolve.

Incidents are bounded: per incident `max_signals` distinct signals (the latest of each), a timeline of
`max_timeline` entries and `max_trace_ids` trace ids; resolved incidents are forgotten once their
cooldown is over. `state()` / `from_state()` round-trip through JSON.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.detect.signals import Severity, Signal

__all__ = ["Correlator", "Incident", "IncidentConfig", "IncidentEvent", "TimelineEntry"]

_STATE_VERSION = 1


class IncidentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    join_window_s: float = Field(120.0, ge=0)
    quiet_period_s: float = Field(600.0, gt=0)
    cooldown_s: float = Field(1800.0, ge=0)
    max_signals: int = Field(50, ge=1)
    max_timeline: int = Field(200, ge=2)
    max_trace_ids: int = Field(500, ge=0)
    max_open: int = Field(10_000, ge=1)


class TimelineEntry(BaseModel):
    at: float
    event: Literal["opened", "signal", "escalated", "reopened", "resolved"]
    fingerprint: str | None = None
    detail: str = ""


class Incident(BaseModel):
    id: str
    project: str
    title: str
    severity: Severity
    status: Literal["open", "resolved"] = "open"
    services: list[str] = []
    opened_at: float
    updated_at: float
    last_seen_at: float
    resolved_at: float | None = None
    first_window_start: float
    last_window_end: float
    reopened: int = 0
    lead_fingerprint: str | None = None  # the signal the title describes
    signals: list[Signal] = []  # the latest signal of each fingerprint
    occurrences: dict[str, int] = {}  # fingerprint -> windows it was seen in
    trace_ids: list[str] = []
    timeline: list[TimelineEntry] = []


EventType = Literal["opened", "reopened", "updated", "resolved"]


class IncidentEvent(BaseModel):
    type: EventType
    at: float
    incident: Incident  # a snapshot taken when the event was made
    signals: list[Signal] = []  # the signals of this call that touched the incident


class _State(BaseModel):
    version: int
    incidents: list[Incident]


def _groups(signals: list[Signal], join_window_s: float) -> list[list[Signal]]:
    """Union-find over the batch: same fingerprint, a shared trace id, or same service and time."""
    parent = list(range(len(signals)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    by_key: dict[tuple[str, str], int] = {}
    by_service: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(signals):
        keys = [("fp", s.fingerprint)] + [("trace", f"{s.project}\x1f{t}") for t in s.trace_ids]
        for key in keys:
            if key in by_key:
                union(i, by_key[key])
            else:
                by_key[key] = i
        by_service.setdefault((s.project, s.service), []).append(i)
    for members in by_service.values():
        # a sweep in time order: each signal joins the run it is within join_window_s of
        members.sort(key=lambda i: signals[i].window_start)
        run_end = -math.inf
        for k, i in enumerate(members):
            if k and signals[i].window_start <= run_end + join_window_s:
                union(i, members[k - 1])
            run_end = max(run_end, signals[i].window_end) if k else signals[i].window_end
    groups: dict[int, list[Signal]] = {}
    for i, s in enumerate(signals):
        groups.setdefault(find(i), []).append(s)
    return sorted(groups.values(), key=lambda g: min(s.window_start for s in g))


class Correlator:
    """Keeps incidents and turns batches of signals into incident events; see the module docstring."""

    def __init__(self, config: IncidentConfig | None = None) -> None:
        self.config = config or IncidentConfig()
        self._incidents: dict[str, Incident] = {}
        self._by_fingerprint: dict[str, str] = {}
        self._by_trace: dict[str, str] = {}  # only open incidents' traces
        self._by_service: dict[tuple[str, str], set[str]] = {}  # only open incidents
        self._recurred: set[str] = set()  # changed by recurrence alone since `take_recurred`

    @property
    def incidents(self) -> list[Incident]:
        return list(self._incidents.values())

    @property
    def open_incidents(self) -> list[Incident]:
        return [i for i in self._incidents.values() if i.status == "open"]

    def _index_open(self, incident: Incident) -> None:
        for service in incident.services:
            self._by_service.setdefault((incident.project, service), set()).add(incident.id)
        for trace in incident.trace_ids:
            self._by_trace.setdefault(f"{incident.project}\x1f{trace}", incident.id)

    def observe(self, signals: Iterable[Signal], now: float) -> list[IncidentEvent]:
        events: dict[str, IncidentEvent] = {}
        for group in _groups(list(signals), self.config.join_window_s):
            incident, placed = self._place(group, now)
            changed = self._absorb(incident, group, now)
            if placed == "updated" and not changed:
                self._recurred.add(incident.id)
                continue
            previous = events.get(incident.id)
            kind: EventType = placed if previous is None or previous.type == "updated" else previous.type
            touched = (previous.signals if previous else []) + group
            events[incident.id] = IncidentEvent(type=kind, at=now, incident=incident, signals=touched)
        for incident in self._resolve_quiet(now):
            events[incident.id] = IncidentEvent(type="resolved", at=now, incident=incident)
        self._forget(now)
        # snapshots, so later changes to an incident do not rewrite events already handed out
        return [e.model_copy(update={"incident": e.incident.model_copy(deep=True)}) for e in events.values()]

    def take_recurred(self) -> list[Incident]:
        """Snapshots of the incidents whose signals recurred (new windows, occurrences, evidence)
        without an event since the last call: worth storing, not worth announcing."""
        recurred, self._recurred = self._recurred, set()
        return [self._incidents[i].model_copy(deep=True) for i in sorted(recurred) if i in self._incidents]

    def tick(self, now: float) -> list[IncidentEvent]:
        """Resolve and forget by time alone (same as `observe([], now)`)."""
        return self.observe((), now)

    def _place(
        self, group: list[Signal], now: float
    ) -> tuple[Incident, Literal["opened", "reopened", "updated"]]:
        c = self.config
        for s in group:
            found = self._incidents.get(self._by_fingerprint.get(s.fingerprint, ""))
            if found is None:
                continue
            if found.status == "open":
                return found, "updated"
            if found.resolved_at is not None and now - found.resolved_at <= c.cooldown_s:
                found.status, found.resolved_at = "open", None
                found.reopened += 1
                self._index_open(found)
                self._log(found, TimelineEntry(at=now, event="reopened", fingerprint=s.fingerprint))
                return found, "reopened"
        for s in group:
            for trace in s.trace_ids:
                found = self._incidents.get(self._by_trace.get(f"{s.project}\x1f{trace}", ""))
                if found is not None and found.status == "open":
                    return found, "updated"
        for s in group:
            for incident_id in sorted(self._by_service.get((s.project, s.service), ())):
                found = self._incidents[incident_id]
                if s.window_start <= found.last_window_end + c.join_window_s:
                    return found, "updated"
        return self._open(group, now), "opened"

    def _open(self, group: list[Signal], now: float) -> Incident:
        first = group[0]
        digest = hashlib.sha256(f"{first.project}\x1f{first.fingerprint}\x1f{now!r}".encode()).hexdigest()
        incident = Incident(
            id=f"inc_{digest[:16]}",
            project=first.project,
            title=first.title,
            severity=max((s.severity for s in group), key=lambda v: v.rank),  # no "escalated" at birth
            opened_at=now,
            updated_at=now,
            last_seen_at=now,
            first_window_start=min(s.window_start for s in group),
            last_window_end=max(s.window_end for s in group),
        )
        self._log(
            incident, TimelineEntry(at=now, event="opened", fingerprint=first.fingerprint, detail=first.title)
        )
        self._incidents[incident.id] = incident
        while len(self.open_incidents) > self.config.max_open:
            oldest = min(self.open_incidents, key=lambda i: i.last_seen_at)
            self._resolve(oldest, now, "evicted: too many open incidents")
        return incident

    def _absorb(self, incident: Incident, group: list[Signal], now: float) -> bool:
        """Add a group's signals to an incident; True when that changed more than recurrence counts."""
        c = self.config
        changed = False
        before = incident.severity
        latest = {s.fingerprint: i for i, s in enumerate(incident.signals)}
        seen_now: set[str] = set()
        for s in group:
            self._by_fingerprint[s.fingerprint] = incident.id
            if s.fingerprint not in seen_now:
                incident.occurrences[s.fingerprint] = incident.occurrences.get(s.fingerprint, 0) + 1
                seen_now.add(s.fingerprint)
            if s.fingerprint in latest:
                incident.signals[latest[s.fingerprint]] = s
            elif len(incident.signals) < c.max_signals:
                latest[s.fingerprint] = len(incident.signals)
                incident.signals.append(s)
                if len(incident.signals) > 1:
                    changed = True
                    self._log(
                        incident,
                        TimelineEntry(at=now, event="signal", fingerprint=s.fingerprint, detail=s.title),
                    )
            if s.service not in incident.services:
                incident.services.append(s.service)
                self._by_service.setdefault((s.project, s.service), set()).add(incident.id)
                changed = True
            for trace in s.trace_ids:
                key = f"{s.project}\x1f{trace}"
                if key not in self._by_trace and len(incident.trace_ids) < c.max_trace_ids:
                    incident.trace_ids.append(trace)
                    self._by_trace[key] = incident.id
            incident.first_window_start = min(incident.first_window_start, s.window_start)
            incident.last_window_end = max(incident.last_window_end, s.window_end)
        worst = max(incident.signals, key=lambda s: (s.severity.rank, s.value / (s.threshold or 1.0)))
        # never downgraded while open, and re-titled only when the lead problem changes: stable tickets
        incident.severity = max(incident.severity, worst.severity, key=lambda v: v.rank)
        related = len(incident.signals) - 1
        if changed or worst.fingerprint != incident.lead_fingerprint:
            incident.lead_fingerprint = worst.fingerprint
            incident.title = worst.title + (f" (+{related} related)" if related else "")
        if incident.severity.rank > before.rank:
            changed = True
            self._log(incident, TimelineEntry(at=now, event="escalated", detail=incident.severity.value))
        incident.last_seen_at = now
        if changed:
            incident.updated_at = now
        return changed

    def _log(self, incident: Incident, entry: TimelineEntry) -> None:
        incident.timeline.append(entry)
        if len(incident.timeline) > self.config.max_timeline:
            del incident.timeline[1]  # the opening entry stays

    def _resolve(self, incident: Incident, now: float, detail: str) -> None:
        incident.status, incident.resolved_at, incident.updated_at = "resolved", now, now
        self._log(incident, TimelineEntry(at=now, event="resolved", detail=detail))
        for trace in incident.trace_ids:
            if self._by_trace.get(f"{incident.project}\x1f{trace}") == incident.id:
                del self._by_trace[f"{incident.project}\x1f{trace}"]
        for service in incident.services:
            ids = self._by_service.get((incident.project, service))
            if ids is not None:
                ids.discard(incident.id)
                if not ids:
                    del self._by_service[(incident.project, service)]

    def _resolve_quiet(self, now: float) -> list[Incident]:
        quiet = [i for i in self.open_incidents if now - i.last_seen_at >= self.config.quiet_period_s]
        for incident in quiet:
            self._resolve(incident, now, f"quiet for {self.config.quiet_period_s:.0f} s")
        return quiet

    def _forget(self, now: float) -> None:
        done = [
            i.id
            for i in self._incidents.values()
            if i.status == "resolved"
            and i.resolved_at is not None
            and now - i.resolved_at > self.config.cooldown_s
        ]
        for incident_id in done:
            incident = self._incidents.pop(incident_id)
            for fp in incident.occurrences:
                if self._by_fingerprint.get(fp) == incident_id:
                    del self._by_fingerprint[fp]

    def state(self) -> dict[str, Any]:
        return _State(version=_STATE_VERSION, incidents=list(self._incidents.values())).model_dump(
            mode="json"
        )

    @classmethod
    def from_state(cls, data: dict[str, Any], config: IncidentConfig | None = None) -> Correlator:
        state = _State.model_validate(data)
        if state.version != _STATE_VERSION:
            raise ValueError(f"unsupported incident state version {state.version!r}")
        correlator = cls(config)
        for incident in sorted(state.incidents, key=lambda i: i.opened_at):
            correlator._incidents[incident.id] = incident
            for fp in incident.occurrences:
                correlator._by_fingerprint[fp] = incident.id
            if incident.status == "open":
                correlator._index_open(incident)
        return correlator
