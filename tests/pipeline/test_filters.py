"""RecordFilter: a pipeline's FilterSpec applied to OTLP resources and records."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from vigil.pipeline.filters import RecordFilter, ResourceContext
from vigil.specs import FilterSpec


def make_filter(**spec: Any) -> RecordFilter:
    return RecordFilter(FilterSpec.model_validate(spec))


def value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=v)


def record(body: str = "", **attrs: Any) -> LogRecord:
    """A record with a string body; `http_route=...` becomes the attribute `http.route`."""
    return LogRecord(
        body=AnyValue(string_value=body),
        attributes=[KeyValue(key=k.replace("_", "."), value=value(v)) for k, v in attrs.items()],
    )


def resource(service: str = "api", **attrs: Any) -> ResourceContext:
    return ResourceContext({"service.name": service, **attrs}, service)


def test_empty_filter_takes_everything() -> None:
    f = make_filter()
    assert f.accepts_resource(ResourceContext({}, ""))
    assert f.accepts_record(LogRecord(), 0)
    assert f.accepts_record(record("anything", http_status=1), 24)


def test_min_severity() -> None:
    f = make_filter(min_severity="ERROR")
    assert [f.accepts_record(LogRecord(), s) for s in (0, 13, 16, 17, 18, 24)] == [
        False,
        False,
        False,
        True,
        True,
        True,
    ]


def test_services_are_checked_on_the_resource() -> None:
    f = make_filter(services=["api", "db"])
    assert f.accepts_resource(resource("api"))
    assert f.accepts_resource(resource("db"))
    assert not f.accepts_resource(resource("web"))
    assert not f.accepts_resource(resource(""))
    assert f.accepts_record(record(), 0)


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (500, 500, True),
        (500, "500", True),
        ("500", 500, True),
        (500, 501, False),
        (True, True, True),
        (True, "true", True),
        ("true", True, True),
        (True, False, False),
        (False, "false", True),
        ("api", "api", True),
        ("api", "API", False),
        (2.5, 2.5, True),
    ],
)
def test_attribute_equality_compares_string_forms(expected: Any, actual: Any, matches: bool) -> None:
    f = make_filter(attributes={"code": expected})
    assert f.accepts_record(record(code=actual), 0) is matches


def test_missing_attribute_does_not_equal_anything() -> None:
    assert not make_filter(attributes={"code": ""}).accepts_record(record(), 0)


def test_regex_uses_search_semantics() -> None:
    f = make_filter(attributes={"http.route": {"regex": "pay"}})
    assert f.accepts_record(record(http_route="/api/payments/1"), 0)
    assert not f.accepts_record(record(http_route="/api/orders"), 0)
    assert not f.accepts_record(record(), 0)
    anchored = make_filter(attributes={"code": {"regex": "^5\\d\\d$"}})
    assert anchored.accepts_record(record(code=503), 0)
    assert not anchored.accepts_record(record(code=1503), 0)


def test_in_compares_string_forms() -> None:
    f = make_filter(attributes={"code": {"in": [500, "503", True]}})
    assert [f.accepts_record(record(code=v), 0) for v in (500, "500", 503, "true", 404)] == [
        True,
        True,
        True,
        True,
        False,
    ]
    assert not f.accepts_record(record(), 0)


def test_exists_true_and_false() -> None:
    present = make_filter(attributes={"user.id": {"exists": True}})
    absent = make_filter(attributes={"user.id": {"exists": False}})
    with_user, without_user = record(user_id="u1"), record(other="x")
    assert (present.accepts_record(with_user, 0), present.accepts_record(without_user, 0)) == (True, False)
    assert (absent.accepts_record(with_user, 0), absent.accepts_record(without_user, 0)) == (False, True)


def test_resource_attributes() -> None:
    f = make_filter(resource_attributes={"env": "prod", "region": {"regex": "^eu-"}})
    assert f.accepts_resource(resource(env="prod", region="eu-west-1"))
    assert not f.accepts_resource(resource(env="staging", region="eu-west-1"))
    assert not f.accepts_resource(resource(env="prod", region="us-east-1"))
    assert not f.accepts_resource(resource(region="eu-west-1"))


def test_body_contains() -> None:
    f = make_filter(body="refused")
    assert f.accepts_record(record("Connection refused: pool exhausted"), 0)
    assert not f.accepts_record(record("Connection REFUSED"), 0)
    assert not f.accepts_record(record(""), 0)


def test_body_contains_ignore_case() -> None:
    f = make_filter(body={"contains": "Refused", "ignore_case": True})
    assert f.accepts_record(record("connection REFUSED"), 0)
    assert not f.accepts_record(record("connection reset"), 0)


def test_body_regex_and_ignore_case() -> None:
    f = make_filter(body={"regex": "time(d )?out"})
    assert f.accepts_record(record("request timed out after 30s"), 0)
    assert not f.accepts_record(record("TIMEOUT"), 0)
    assert make_filter(body={"regex": "time(d )?out", "ignore_case": True}).accepts_record(
        record("TIMEOUT"), 0
    )


def test_every_condition_must_hold() -> None:
    f = make_filter(min_severity="WARN", attributes={"code": 500}, body="db")
    assert f.accepts_record(record("db down", code=500), 13)
    assert not f.accepts_record(record("db down", code=500), 9)
    assert not f.accepts_record(record("db down", code=404), 17)
    assert not f.accepts_record(record("cache down", code=500), 17)
    both = make_filter(services=["api"], resource_attributes={"env": "prod"})
    assert both.accepts_resource(resource("api", env="prod"))
    assert not both.accepts_resource(resource("api", env="dev"))
    assert not both.accepts_resource(resource("db", env="prod"))


@pytest.mark.parametrize(
    ("spec", "only"),
    [
        ({}, 0),
        ({"min_severity": "WARN"}, 13),
        ({"min_severity": "WARN", "services": ["api"], "resource_attributes": {"k": {"equals": "v"}}}, 13),
        ({"min_severity": "WARN", "attributes": {"http.status": {"equals": 500}}}, None),
        ({"body": {"contains": "x"}}, None),
    ],
)
def test_only_min_severity_is_given_when_severity_is_the_only_condition_on_a_record(
    spec: dict[str, Any], only: int | None
) -> None:
    f = make_filter(**spec)
    assert f.only_min_severity == only
    if only is not None:  # the router compares instead of calling accepts_record: the same answers
        for severity in range(25):
            assert f.accepts_record(record("x", http_status=200), severity) == (severity >= only)
