from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.doubles.slack_server import SlackServer, validate_message
from vigil.errors import DeliveryError
from vigil.outputs import OutputEnvelope
from vigil.sinks.slack import SlackSink, build_message, truncate
from vigil.specs import SlackSinkSpec

FULL_PAYLOAD = {
    "summary": "Database connection pool exhausted in payment-service",
    "severity": "critical",
    "service": "payment-service",
    "root_cause": "Too many concurrent connections <from> the batch job & the API",
    "remediation": [
        "Increase max_connections",
        "Add connection pooling (PgBouncer)",
        "Throttle the batch job",
    ],
    "error_type": "ConnectionPoolExhausted",
    "notify": True,
}


def make_output(payload: dict[str, Any], **overrides: Any) -> OutputEnvelope:
    fields: dict[str, Any] = {
        "id": "out-1",
        "project_id": "proj-42",
        "request_id": "req-abc",
        "pipeline": "errors",
        "batch_records": 10,
        "received_at": datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
        "payload": payload,
    }
    fields.update(overrides)
    return OutputEnvelope(**fields)


def slack_spec(url: str, **extra: Any) -> SlackSinkSpec:
    return SlackSinkSpec.model_validate({"type": "slack", "webhook_url": url, **extra})


def text_objects(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every text object in the message's blocks, in order."""
    out: list[dict[str, Any]] = []
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"])
        out.extend(block.get("fields", []))
        out.extend(e for e in block.get("elements", []) if "text" in e)
    return out


def texts(message: dict[str, Any]) -> list[str]:
    return [t["text"] for t in text_objects(message)]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
async def slack() -> AsyncIterator[SlackServer]:
    async with SlackServer() as server:
        yield server


async def test_full_payload_reads_as_an_incident(client: httpx.AsyncClient, slack: SlackServer) -> None:
    await SlackSink(slack_spec(slack.url), client).deliver(make_output(FULL_PAYLOAD))

    [message] = slack.messages
    header, fields, root_cause, remediation, details, context = message["blocks"]
    assert header == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": ":red_circle: Database connection pool exhausted in payment-service",
            "emoji": True,
        },
    }
    assert [f["text"] for f in fields["fields"]] == [
        "*Severity*\ncritical",
        "*Service*\npayment-service",
        "*Project*\n`proj-42`",
        "*Request id*\n`req-abc`",
    ]
    assert root_cause["text"]["text"] == (
        "*Root cause*\nToo many concurrent connections &lt;from&gt; the batch job &amp; the API"
    )
    assert remediation["text"]["text"] == (
        "*Remediation*\n1. Increase max_connections\n2. Add connection pooling (PgBouncer)\n"
        "3. Throttle the batch job"
    )
    assert details["text"]["text"] == "*Details*\n*error_type*: ConnectionPoolExhausted\n*notify*: true"
    [element] = context["elements"]
    assert element["text"].startswith("Pipeline *errors* · 10 records · Received <!date^1705314600^")
    assert element["text"].endswith("|2024-01-15 10:30:00 UTC>")
    assert message["text"] == "[CRITICAL] Database connection pool exhausted in payment-service"


async def test_minimal_payload(client: httpx.AsyncClient, slack: SlackServer) -> None:
    output = make_output({"summary": "Disk almost full"}, pipeline=None, batch_records=None)
    await SlackSink(slack_spec(slack.url), client).deliver(output)
    [message] = slack.messages
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "context"]
    assert message["blocks"][0]["text"]["text"] == ":white_circle: Disk almost full"
    assert [f["text"] for f in message["blocks"][1]["fields"]] == [
        "*Project*\n`proj-42`",
        "*Request id*\n`req-abc`",
    ]
    assert message["blocks"][2]["elements"][0]["text"].startswith("Received <!date^")
    assert message["text"] == "Disk almost full"


async def test_payload_without_summary_gets_a_generic_card(
    client: httpx.AsyncClient, slack: SlackServer
) -> None:
    payload = {"processed": 3, "results": [{"id": 1, "label": "a<b"}], "severity": "warning"}
    await SlackSink(slack_spec(slack.url), client).deliver(make_output(payload))
    [message] = slack.messages
    header, _, code, _ = message["blocks"]
    assert header["text"]["text"] == ":large_orange_circle: Agent output"
    assert code["text"]["text"] == (
        '*Payload*\n```{"processed":3,"results":[{"id":1,"label":"a&lt;b"}],"severity":"warning"}```'
    )
    assert message["text"] == "[WARNING] Agent output for request req-abc"


def test_remediation_as_a_string_and_services_as_a_list() -> None:
    payload = {
        "summary": "s",
        "remediation": "Restart the pod",
        "service": "api",
        "services": ["api", "db", "cache"],
        "root_cause": None,
    }
    message = build_message(make_output(payload))
    all_texts = texts(message)
    assert "*Remediation*\nRestart the pod" in all_texts
    assert "*Services*\napi, db, cache" in all_texts
    assert not any(t.startswith("*Root cause*") for t in all_texts)


@pytest.mark.parametrize(
    ("severity", "emoji"),
    [
        ("critical", ":red_circle:"),
        ("ERROR", ":red_circle:"),
        ("warning", ":large_orange_circle:"),
        ("informational", ":large_blue_circle:"),
        ("info", ":large_blue_circle:"),
        ("something-else", ":white_circle:"),
        (None, ":white_circle:"),
        (["critical"], ":white_circle:"),
    ],
)
def test_emoji_by_severity(severity: Any, emoji: str) -> None:
    message = build_message(make_output({"summary": "x", "severity": severity}))
    assert message["blocks"][0]["text"]["text"] == f"{emoji} x"


def test_odd_field_types_do_not_break_the_message() -> None:
    payload = {
        "summary": {"not": "a string"},
        "severity": 17,
        "root_cause": ["a", "b"],
        "remediation": [None, "", {"step": 1}, 3],
        "service": 42,
        "huge_int": 2**80,
    }
    message = build_message(make_output(payload))
    assert validate_message(message) is None
    assert message["blocks"][0]["text"]["text"] == ":white_circle: Agent output"
    assert str(2**80) in message["blocks"][2]["text"]["text"]
    assert "*Severity*\n17" in texts(message) and "*Service*\n42" in texts(message)


def _huge_payloads() -> list[dict[str, Any]]:
    long = "Connection refused & <retrying> " * 2000
    emoji = "\U0001f525" * 5000
    return [
        {
            "summary": "S" * 10_000,
            "severity": "critical",
            "services": [f"service-{i}" for i in range(2000)],
            "root_cause": long,
            "remediation": [f"step {i}: " + "x" * 200 for i in range(500)],
            **{f"extra_{i}": long for i in range(50)},
        },
        {"summary": emoji, "root_cause": emoji, "remediation": [emoji] * 3, "service": emoji},
        {"summary": "&" * 5000, "root_cause": "&" * 5000, "remediation": "<" * 5000},
        {"records": [{"body": long, "n": i} for i in range(200)]},
    ]


@pytest.mark.parametrize("payload", _huge_payloads(), ids=["text", "emoji", "entities", "no-summary"])
async def test_huge_payloads_are_truncated_into_a_valid_message(
    client: httpx.AsyncClient, slack: SlackServer, payload: dict[str, Any]
) -> None:
    await SlackSink(slack_spec(slack.url), client).deliver(make_output(payload))
    [request] = slack.requests
    assert request.status == 200, request.error
    [message] = slack.messages
    header = message["blocks"][0]["text"]["text"]
    assert len(header.encode("utf-16-le")) // 2 <= 150
    assert header.endswith("…") or "summary" not in payload
    assert len(message["text"]) <= 3000
    for obj in text_objects(message):
        if obj["type"] == "mrkdwn":
            # Truncation never leaves half an escape behind.
            assert "&" not in obj["text"].replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")


def test_long_remediation_list_says_how_many_steps_were_left_out() -> None:
    steps = [f"step {i}: " + "x" * 200 for i in range(500)]
    message = build_message(make_output({"summary": "s", "remediation": steps}))
    [remediation] = [t for t in texts(message) if t.startswith("*Remediation*")]
    assert remediation.splitlines()[1].startswith("1. step 0: ")
    assert remediation.endswith("more steps_")
    shown = len(remediation.splitlines()) - 2
    assert remediation.endswith(f"_… {500 - shown} more steps_")
    assert len(remediation) <= 3000


def test_truncate_respects_surrogate_pairs_and_entities() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcd", 3) == "ab…"
    assert truncate("\U0001f525" * 3, 4) == "\U0001f525…"
    assert truncate("a&amp;b", 5, entities=True) == "a…"
    assert truncate("a&amp;b", 5) == "a&am…"


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (400, "invalid_payload", False),
        (403, "invalid_token", False),
        (404, "no_service", False),
        (410, "channel_is_archived", False),
        (429, "rate_limited", True),
        (500, "internal_error", True),
        (503, "service_unavailable", True),
    ],
)
async def test_slack_errors_are_classified(
    client: httpx.AsyncClient, slack: SlackServer, status: int, body: str, retryable: bool
) -> None:
    slack.fail_next(1, status=status)
    with pytest.raises(DeliveryError) as info:
        await SlackSink(slack_spec(slack.url, name="oncall"), client).deliver(make_output(FULL_PAYLOAD))
    assert info.value.retryable is retryable and info.value.status == status
    assert str(info.value) == f"slack 'oncall': HTTP {status}: {body}"
    if status == 429:
        assert slack.requests[0].status == 429


async def test_unknown_webhook_path_is_permanent_and_the_url_stays_secret(
    client: httpx.AsyncClient, slack: SlackServer
) -> None:
    wrong = slack.url.rsplit("/", 1)[0] + "/revoked-token"
    with pytest.raises(DeliveryError) as info:
        await SlackSink(slack_spec(wrong), client).deliver(make_output(FULL_PAYLOAD))
    assert info.value.status == 404 and not info.value.retryable
    assert "revoked-token" not in str(info.value) and "no_service" in str(info.value)


async def test_timeout_and_connection_refused_are_retryable(
    client: httpx.AsyncClient, slack: SlackServer
) -> None:
    slack.delay_next(1, seconds=1.0)
    with pytest.raises(DeliveryError) as info:
        await SlackSink(slack_spec(slack.url, timeout_s=0.2), client).deliver(make_output(FULL_PAYLOAD))
    assert info.value.retryable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeliveryError) as info:
        url = f"http://127.0.0.1:{port}/services/T/B/secret-token"
        await SlackSink(slack_spec(url), client).deliver(make_output(FULL_PAYLOAD))
    assert info.value.retryable
    assert "secret-token" not in str(info.value)


# The double itself must refuse what Slack refuses, or the tests above prove nothing.


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"blocks": "nope"}, "invalid_blocks"),
        ({"blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ({"blocks": [{"type": "banner"}]}, "invalid_blocks"),
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
            "invalid_blocks",
        ),
        ({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]}, "invalid_blocks"),
        ({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}, "invalid_blocks"),
        ({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]}, "invalid_blocks"),
        ({"blocks": [{"type": "section"}]}, "invalid_blocks"),
        (
            {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
            "invalid_blocks",
        ),
        ({"blocks": [{"type": "context", "elements": []}]}, "invalid_blocks"),
        ({}, "no_text"),
        ([], "invalid_payload"),
    ],
)
async def test_slack_double_refuses_invalid_messages(
    client: httpx.AsyncClient, slack: SlackServer, message: Any, code: str
) -> None:
    response = await client.post(slack.url, json=message)
    assert (response.status_code, response.text) == (400, code)
    assert slack.requests[0].error is not None and slack.requests[0].error.startswith(code)
    assert slack.messages == []


async def test_slack_double_accepts_plain_text_and_refuses_non_json(
    client: httpx.AsyncClient, slack: SlackServer
) -> None:
    response = await client.post(slack.url, json={"text": "hello"})
    assert (response.status_code, response.text) == (200, "ok")
    response = await client.post(slack.url, content=b"payload=not-json")
    assert (response.status_code, response.text) == (400, "invalid_payload")
    assert slack.messages == [{"text": "hello"}]
