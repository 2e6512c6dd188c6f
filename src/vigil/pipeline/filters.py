"""Compiles a pipeline's `FilterSpec` into a predicate over OTLP log records.

Filters run on the protobuf objects, before flattening: a pipeline that takes 5% of the traffic
pays the cost of building flat records for that 5% only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from vigil.pipeline.user_regex import UserRegex
from vigil.pipeline.view import record_attributes
from vigil.records import FlatRecord, attributes, body_text
from vigil.specs import BodyMatch, FilterSpec, ValueMatch

ValueTest = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class ResourceContext:
    """What is computed once per ResourceLogs and shared by its records."""

    attributes: dict[str, Any]
    service: str


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value_test(match: ValueMatch) -> ValueTest:
    if match.exists is not None:
        wanted = match.exists
        return lambda value: (value is not None) == wanted
    if match.regex is not None:
        pattern = UserRegex(match.regex)
        return lambda value: value is not None and pattern.search(_as_text(value))
    if match.in_ is not None:
        options = {_as_text(v) for v in match.in_}
        return lambda value: value is not None and _as_text(value) in options
    expected = _as_text(match.equals)
    return lambda value: value is not None and _as_text(value) == expected


def _body_test(match: BodyMatch) -> Callable[[str], bool]:
    if match.regex is not None:
        pattern = UserRegex(match.regex, ignore_case=match.ignore_case)
        return pattern.search
    needle = match.contains or ""
    if match.ignore_case:
        lowered = needle.lower()
        return lambda body: lowered in body.lower()
    return lambda body: needle in body


class RecordFilter:
    """Every condition of the spec holds: `accepts_resource` then `accepts_record` for OTLP log
    records, `accepts_incident` for the detector's incident records (flat already)."""

    __slots__ = (
        "_attr_tests",
        "_body",
        "_min_severity",
        "_resource_tests",
        "_services",
        "only_min_severity",
        "takes_incidents",
        "takes_logs",
    )

    def __init__(self, spec: FilterSpec) -> None:
        self.takes_logs = "log" in spec.kinds
        self.takes_incidents = "incident" in spec.kinds
        self._min_severity = spec.min_severity or 0
        self._services = frozenset(spec.services) if spec.services is not None else None
        self._attr_tests = [(k, _value_test(m)) for k, m in spec.attributes.items()]
        self._resource_tests = [(k, _value_test(m)) for k, m in spec.resource_attributes.items()]
        self._body = _body_test(spec.body) if spec.body is not None else None
        self.only_min_severity: int | None = (
            self._min_severity if not self._attr_tests and self._body is None else None
        )
        """The minimum severity when it is the only condition on a record (`accepts_record` is then
        `severity >= only_min_severity`): the router compares instead of calling, per record."""

    def accepts_resource(self, resource: ResourceContext) -> bool:
        """Conditions on the resource alone, checked once for all of its records."""
        if self._services is not None and resource.service not in self._services:
            return False
        return all(test(resource.attributes.get(key)) for key, test in self._resource_tests)

    def accepts_record(self, record: LogRecord, severity: int) -> bool:
        """`record`: an OTLP `LogRecord`, or a record of the router's view (`vigil.pipeline.view`)."""
        if severity < self._min_severity:
            return False
        if self._attr_tests:
            pairs = record.attributes
            # the router's records come from its view of the export: raw KeyValue bytes
            attrs = record_attributes(pairs) if pairs and isinstance(pairs[0], bytes) else attributes(pairs)
            if not all(test(attrs.get(key)) for key, test in self._attr_tests):
                return False
        return self._body is None or self._body(body_text(record.body))

    def accepts_incident(self, record: FlatRecord, services: list[str]) -> bool:
        """An incident record: `services` holds when any of the incident's services is wanted."""
        if not self.takes_incidents or record["severityNumber"] < self._min_severity:
            return False
        if self._services is not None and self._services.isdisjoint(services):
            return False
        resource = record["resourceAttributes"]
        if not all(test(resource.get(key)) for key, test in self._resource_tests):
            return False
        attrs = record["attributes"]
        if not all(test(attrs.get(key)) for key, test in self._attr_tests):
            return False
        return self._body is None or self._body(record["body"])
