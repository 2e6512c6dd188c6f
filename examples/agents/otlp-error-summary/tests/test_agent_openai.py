from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from error_summary.openai_analyzer import OpenAIAnalyzer
from error_summary.rules import RulesAnalyzer
from local_servers import Answer, JsonServer, Received, chat_completion
from sample_records import SEED_BATCH

AI_FINDING = {
    "summary": "payment-service cannot get database connections",
    "severity": "Critical",
    "error_type": "ConnectionPoolExhausted",
    "root_cause": "Slow queries hold every pooled connection",
    "remediation": "Find the slow queries; raise the pool size",
    "notify": True,
}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def analyzer(server: JsonServer, http: httpx.AsyncClient, timeout: float = 5.0) -> OpenAIAnalyzer:
    return OpenAIAnalyzer(
        api_key="sk-test",
        model="test-model",
        base_url=server.url + "/v1/",
        timeout=timeout,
        fallback=RulesAnalyzer(),
        http=http,
    )


async def test_uses_a_valid_json_answer(http: httpx.AsyncClient) -> None:
    with JsonServer(chat_completion(json.dumps(AI_FINDING))) as server:
        result = await analyzer(server, http).analyze(SEED_BATCH)

    assert result == {
        **AI_FINDING,
        "severity": "critical",
        "services": ["payment-service"],
        "records": 2,
        "analyzer": "openai",
    }
    [request] = server.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "test-model"
    assert request.body["response_format"] == {"type": "json_object"}
    assert "Timeout waiting for DB connection after 30s" in request.body["messages"][-1]["content"]


async def test_accepts_json_inside_a_markdown_fence(http: httpx.AsyncClient) -> None:
    fenced = "```json\n" + json.dumps(AI_FINDING) + "\n```"
    with JsonServer(chat_completion(fenced)) as server:
        result = await analyzer(server, http).analyze(SEED_BATCH)

    assert result["analyzer"] == "openai"


@pytest.mark.parametrize(
    "content",
    [
        "The database pool looks exhausted.",
        json.dumps({k: v for k, v in AI_FINDING.items() if k != "remediation"}),
        json.dumps({**AI_FINDING, "severity": "sev1"}),
    ],
    ids=["not-json", "missing-field", "bad-severity"],
)
async def test_malformed_answers_fall_back_to_rules(http: httpx.AsyncClient, content: str) -> None:
    with JsonServer(chat_completion(content)) as server:
        result = await analyzer(server, http).analyze(SEED_BATCH)

    assert result == await RulesAnalyzer().analyze(SEED_BATCH)
    assert len(server.received) == 1


async def test_http_errors_fall_back_to_rules(http: httpx.AsyncClient) -> None:
    def unauthorized(_: Received) -> Answer:
        return Answer(
            401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        )

    with JsonServer(unauthorized) as server:
        result = await analyzer(server, http).analyze(SEED_BATCH)

    assert result["analyzer"] == "rules"
    assert result["error_type"] == "ConnectionPoolExhausted"


async def test_a_slow_model_falls_back_within_the_timeout(http: httpx.AsyncClient) -> None:
    with JsonServer(chat_completion(json.dumps(AI_FINDING), delay=3.0)) as server:
        started = time.monotonic()
        result = await analyzer(server, http, timeout=0.3).analyze(SEED_BATCH)
        elapsed = time.monotonic() - started

    assert result["analyzer"] == "rules"
    assert elapsed < 2.0
