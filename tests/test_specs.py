"""Validation of what users configure: filters, batches, agents, retries and sinks."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from vigil.specs import (
    NAME_PATTERN,
    AgentSpec,
    BatchSpec,
    BodyMatch,
    FilterSpec,
    RetrySpec,
    SinkSpec,
    SlackSinkSpec,
    ValueMatch,
    WebhookSinkSpec,
)


def error_messages(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [e["msg"] for e in exc.value.errors()]


# ValueMatch and BodyMatch


@pytest.mark.parametrize("value", ["500", 500, 2.5, True])
def test_plain_value_means_equals(value: Any) -> None:
    match = ValueMatch.model_validate(value)
    assert match.equals == value
    assert type(match.equals) is type(value)
    assert (match.regex, match.in_, match.exists) == (None, None, None)


def test_in_is_read_from_its_alias() -> None:
    assert ValueMatch.model_validate({"in": [500, "503"]}).in_ == [500, "503"]
    assert ValueMatch(in_=["a"]).in_ == ["a"]


@pytest.mark.parametrize("data", [{}, {"equals": 1, "regex": "x"}, {"in": [1], "exists": True}])
def test_value_match_needs_exactly_one_condition(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        ValueMatch.model_validate(data)
    assert error_messages(info) == ["Value error, give exactly one of equals, regex, in, exists"]


def test_exists_false_counts_as_a_condition() -> None:
    assert ValueMatch.model_validate({"exists": False}).exists is False


def test_value_match_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ValueMatch.model_validate({"equals": 1, "contains": "x"})


@pytest.mark.parametrize("model", [ValueMatch, BodyMatch])
def test_invalid_regex_is_rejected_with_the_pattern(model: type[ValueMatch | BodyMatch]) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate({"regex": "(unclosed"})
    [message] = error_messages(info)
    assert message.startswith("Value error, invalid regex '(unclosed': missing )")


def test_plain_string_body_means_contains() -> None:
    assert BodyMatch.model_validate("timeout") == BodyMatch(contains="timeout", regex=None, ignore_case=False)


@pytest.mark.parametrize("data", [{}, {"ignore_case": True}, {"contains": "a", "regex": "b"}])
def test_body_match_needs_contains_or_regex(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        BodyMatch.model_validate(data)
    assert error_messages(info) == ["Value error, give exactly one of contains, regex"]


# FilterSpec


def test_filter_spec_parses_every_field() -> None:
    spec = FilterSpec.model_validate(
        {
            "min_severity": "error2",
            "services": ["api"],
            "attributes": {"http.status_code": 500, "path": {"regex": "^/pay"}},
            "resource_attributes": {"env": {"in": ["prod"]}},
            "body": "refused",
        }
    )
    assert spec.min_severity == 18
    assert spec.services == ["api"]
    assert spec.attributes == {"http.status_code": ValueMatch(equals=500), "path": ValueMatch(regex="^/pay")}
    assert spec.resource_attributes == {"env": ValueMatch(in_=["prod"])}
    assert spec.body == BodyMatch(contains="refused")


def test_empty_filter_spec() -> None:
    spec = FilterSpec()
    assert (spec.min_severity, spec.services, spec.attributes, spec.resource_attributes, spec.body) == (
        None,
        None,
        {},
        {},
        None,
    )


@pytest.mark.parametrize(
    ("value", "fragment"), [("LOUD", "unknown severity 'LOUD'"), (0, "must be 1-24, got 0")]
)
def test_filter_spec_rejects_bad_min_severity(value: Any, fragment: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        FilterSpec(min_severity=value)


def test_empty_services_list_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        FilterSpec(services=[])
    assert error_messages(info) == ["Value error, services must not be empty; omit it to take every service"]


# BatchSpec, RetrySpec, AgentSpec


def test_batch_spec_bounds() -> None:
    assert BatchSpec() == BatchSpec(max_records=10, max_wait_ms=500)
    assert BatchSpec(max_records=1, max_wait_ms=1) == BatchSpec(max_records=1, max_wait_ms=1)
    assert BatchSpec(max_records=1000, max_wait_ms=600_000).max_records == 1000
    for bad in ({"max_records": 0}, {"max_records": 1001}, {"max_wait_ms": 0}, {"max_wait_ms": 600_001}):
        with pytest.raises(ValidationError):
            BatchSpec.model_validate(bad)


def test_retry_max_backoff_must_be_at_least_initial() -> None:
    assert RetrySpec(initial_backoff_s=2, max_backoff_s=2).max_backoff_s == 2
    with pytest.raises(ValidationError) as info:
        RetrySpec(initial_backoff_s=5, max_backoff_s=1)
    assert error_messages(info) == ["Value error, max_backoff_s must be at least initial_backoff_s"]


@pytest.mark.parametrize("endpoint", ["http://agent:8080/process", "https://agent.example.com/"])
def test_agent_endpoint_accepts_http_urls(endpoint: str) -> None:
    assert AgentSpec(endpoint=endpoint).endpoint == endpoint


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (
            "ftp://agent/process",
            "Value error, endpoint must be an http:// or https:// URL, or builtin:<name>",
        ),
        ("agent:8080", "Value error, endpoint must be an http:// or https:// URL, or builtin:<name>"),
        ("", "Value error, endpoint must be an http:// or https:// URL, or builtin:<name>"),
        ("http://", "Input should be a valid URL, empty host"),
    ],
)
def test_agent_endpoint_must_be_an_http_url(endpoint: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        AgentSpec(endpoint=endpoint)
    assert error_messages(info) == [message]


def test_agent_headers_are_hidden_in_json() -> None:
    spec = AgentSpec(endpoint="http://agent", headers={"Authorization": "Bearer s3cret"})
    assert spec.headers["Authorization"].get_secret_value() == "Bearer s3cret"
    dumped = spec.model_dump_json()
    assert "s3cret" not in dumped
    assert orjson.loads(dumped)["headers"] == {"Authorization": "**********"}
    assert spec.model_dump(mode="json")["headers"] == {"Authorization": "**********"}


# Sinks


def test_sinks_are_discriminated_by_type() -> None:
    adapter: TypeAdapter[WebhookSinkSpec | SlackSinkSpec] = TypeAdapter(SinkSpec)
    webhook = adapter.validate_python({"type": "webhook", "url": "https://hooks.example.com/in"})
    slack = adapter.validate_python(
        {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/X"}
    )
    assert isinstance(webhook, WebhookSinkSpec)
    assert str(webhook.url) == "https://hooks.example.com/in"
    assert isinstance(slack, SlackSinkSpec)
    assert slack.webhook_url.get_secret_value() == "https://hooks.slack.com/services/T/B/X"


def test_unknown_sink_type_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(SinkSpec).validate_python({"type": "email", "url": "https://x"})
    assert info.value.errors()[0]["type"] == "union_tag_invalid"


def test_slack_webhook_url_must_be_a_url() -> None:
    with pytest.raises(ValidationError):
        SlackSinkSpec(type="slack", webhook_url="not a url")


# NAME_PATTERN


@pytest.mark.parametrize("name", ["a", "errors", "payment-errors_2", "0x", "a" * 63])
def test_name_pattern_accepts(name: str) -> None:
    assert re.fullmatch(NAME_PATTERN, name)


@pytest.mark.parametrize("name", ["", "-a", "_a", "Errors", "a.b", "a*", "a b", "a>", "a" * 64, "abc\n"])
def test_name_pattern_rejects(name: str) -> None:
    assert re.fullmatch(NAME_PATTERN, name) is None


def test_builtin_agent_endpoints() -> None:
    spec = AgentSpec(endpoint="builtin:error-summary", engine="llm")
    assert (spec.endpoint, spec.engine) == ("builtin:error-summary", "llm")
    assert AgentSpec(endpoint="builtin:error-summary").engine == "rules"
    with pytest.raises(
        ValidationError, match="unknown built-in agent 'builtin:nope'; known: builtin:error-summary"
    ):
        AgentSpec(endpoint="builtin:nope")
    with pytest.raises(ValidationError):
        AgentSpec(endpoint="http://agent/process", engine="gpt")  # type: ignore[arg-type]
