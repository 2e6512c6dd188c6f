"""What the agent sends for a batch: the rules' analysis with no key, the model's with one (against
the repository's OpenAI double), and the rules' again whenever the model fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from error_summary.app import create_app
from error_summary.settings import Settings
from local_servers import JsonServer, accept_output, serve_app
from sample_records import SAMPLE_BATCH, record

from tests.doubles.openai_server import OpenAIServer

HEADERS = {"X-Project-ID": "0b6c3c1e-5f0e-4c55-9d43-3c1a1c1b2a10", "X-Request-ID": "req-123"}
OPENAI_KEY = "sk-test-agent-5e1f"
MODEL_ANSWER = {
    "summary": "payment-service cannot get database connections: slow queries hold them.",
    "severity": "critical",
    "error_type": "SlowQueries",
    "root_cause": "Slow queries hold every pooled connection.",
    "remediation": ["Find the slow queries.", "Then size the pool."],
    "notify": True,
    "confidence": 0.7,
    "citations": [
        {"template_id": "Connection refused: database pool exhausted", "reason": "The pool is empty."}
    ],
}
OUTPUT_FIELDS = {"summary", "severity", "error_type", "root_cause", "remediation", "notify", "evidence"}


@pytest.fixture
def vigil() -> Iterator[JsonServer]:
    with JsonServer(accept_output) as server:
        yield server


def settings(vigil: JsonServer, **env: str) -> Settings:
    """Settings as the agent reads them from its environment."""
    return Settings.from_env({"VIGIL_API_KEY": "proj-key", "VIGIL_ENDPOINT": vigil.url, **env})


def openai_env(model: OpenAIServer, timeout: float = 5.0) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": model.api_base,
        "AI_TIMEOUT_SECONDS": str(timeout),
    }


def send(config: Settings, vigil: JsonServer, batch: list[dict[str, Any]] = SAMPLE_BATCH) -> dict[str, Any]:
    """POST `batch` to the agent as Vigil does; the payload the agent sent back to Vigil."""
    with serve_app(create_app(config)) as agent_url:
        response = httpx.post(f"{agent_url}/process", json=batch, headers=HEADERS, timeout=30)
    assert response.status_code == 200, response.text
    [sent] = vigil.received
    payload: dict[str, Any] = sent.body["payload"]
    return payload


def test_without_a_key_the_rules_answer(vigil: JsonServer) -> None:
    payload = send(settings(vigil), vigil)

    assert set(payload) >= OUTPUT_FIELDS
    assert payload["agent"] == "otlp-error-summary"
    assert (payload["engine"], payload["fallback_reason"]) == ("rules", None)
    assert (payload["error_type"], payload["severity"], payload["notify"]) == (
        "ConnectionPoolExhausted",
        "critical",
        True,
    )
    assert "connection pool exhausted" in payload["summary"]
    assert payload["root_cause"]
    assert payload["remediation"] and all(isinstance(step, str) for step in payload["remediation"])
    assert {c["template"] for c in payload["evidence"]} == {
        "Connection refused: database pool exhausted",
        "Timeout waiting for DB connection after 30s",
    }
    assert (payload["services"], payload["records"]) == (["payment-service"], 2)


def test_the_rules_say_unknown_rather_than_guess(vigil: JsonServer) -> None:
    batch = [record("Invariant violated: ledger balance mismatch for account 42 (expected 100, got 90)")]

    payload = send(settings(vigil), vigil, batch)

    assert (payload["error_type"], payload["known"], payload["notify"]) == ("Unknown", False, False)
    assert "ledger balance mismatch" in payload["summary"]


def test_structured_bodies_are_analyzed(vigil: JsonServer) -> None:
    payload = send(settings(vigil), vigil, [record({"msg": "write failed", "err": "ENOSPC"})])

    assert payload["error_type"] == "DiskFull"


def test_with_a_key_the_model_answers(vigil: JsonServer) -> None:
    with OpenAIServer(api_key=OPENAI_KEY) as model:
        model.reply_json(MODEL_ANSWER)
        payload = send(settings(vigil, **openai_env(model)), vigil)

        [request] = model.requests
    assert set(payload) >= OUTPUT_FIELDS
    assert (payload["engine"], payload["fallback_reason"]) == ("llm", None)
    assert payload["error_type"] == "SlowQueries"
    assert payload["remediation"] == ["Find the slow queries.", "Then size the pool."]
    assert [c["template"] for c in payload["evidence"]] == ["Connection refused: database pool exhausted"]
    assert payload["tokens"] == 150
    assert request.json()["model"] == "gpt-4o-mini"
    assert request.header("authorization") == f"Bearer {OPENAI_KEY}"
    assert "Timeout waiting for DB connection after 30s" in model.prompt(request)


@pytest.mark.parametrize(
    "replies",
    [
        ("The database pool looks exhausted.", "I think it is the pool."),
        ('{"summary": "cut short', '{"severity": "sev1"}'),
    ],
    ids=["not-json", "invalid-json"],
)
def test_a_malformed_answer_falls_back_to_the_rules(vigil: JsonServer, replies: tuple[str, str]) -> None:
    with OpenAIServer(api_key=OPENAI_KEY) as model:
        model.reply_text(*replies)
        payload = send(settings(vigil, **openai_env(model)), vigil)

        assert len(model.requests) == 2  # the answer, then one repair
    assert (payload["engine"], payload["fallback_reason"]) == ("rules", "invalid_output")
    assert payload["error_type"] == "ConnectionPoolExhausted"
    assert set(payload) >= OUTPUT_FIELDS


def test_a_slow_model_falls_back_to_the_rules(vigil: JsonServer) -> None:
    with OpenAIServer(api_key=OPENAI_KEY) as model:
        model.delay_next(3, 10.0)  # the call and its two retries
        started = time.monotonic()
        payload = send(settings(vigil, **openai_env(model, timeout=0.3)), vigil)
        elapsed = time.monotonic() - started

        assert len(model.requests) == 3
    assert (payload["engine"], payload["fallback_reason"]) == ("rules", "timeout")
    assert payload["error_type"] == "ConnectionPoolExhausted"
    assert elapsed < 6.0  # 3 attempts of 0.3 s and at most 1.5 s of backoff, not 10 s or more


def test_a_refused_key_falls_back_to_the_rules(vigil: JsonServer) -> None:
    with OpenAIServer(api_key="another-key") as model:
        payload = send(settings(vigil, **openai_env(model)), vigil)

    assert (payload["engine"], payload["fallback_reason"]) == ("rules", "provider_error")
    assert OPENAI_KEY not in str(payload)
