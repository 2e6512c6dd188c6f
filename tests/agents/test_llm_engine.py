"""The `llm` engine through pydantic-ai, against real local servers speaking OpenAI's, Anthropic's
and Gemini's protocols (the providers' own SDKs make the HTTP calls)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import orjson
import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import (
    ModelAuthenticationError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelServerError,
    ModelTimeoutError,
)

from tests.doubles.anthropic_server import AnthropicServer
from tests.doubles.gemini_server import GeminiServer
from tests.doubles.openai_server import ModelServer, OpenAIServer, strict_schema_problem
from vigil.agents.builtin.budget import BudgetLimits, MemoryUsageStore, TokenBudget
from vigil.agents.builtin.llm import MAX_ITEMS, FallbackAnalysis, LlmEngine, ModelAnswer, build_prompt
from vigil.agents.builtin.model_guards import model_error
from vigil.agents.builtin.model_registry import NO_KEY, LlmConfig, build_model, model_settings
from vigil.agents.builtin.model_registry import PROVIDERS as ALL_PROVIDERS
from vigil.agents.builtin.models import Analysis, Evidence, EvidenceItem
from vigil.settings import LlmSettings

PROVIDERS = ("openai", "anthropic", "gemini")
KEYS = {
    "openai": "sk-test-openai-7f3a9c1e5b",
    "anthropic": "sk-ant-test-2d8e4f6a0c",
    "gemini": "AIza-test-gemini-9b1d3f5e7a",
}
T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def item(template_id: str, template: str, service: str, count: int, samples: list[str]) -> EvidenceItem:
    return EvidenceItem(
        template_id=template_id,
        template=template,
        service=service,
        count=count,
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=5),
        severity_number=17,
        samples=samples,
        attributes={"db.system": "postgresql"},
    )


def make_evidence(*extra: EvidenceItem, request_id: str = "req-1") -> Evidence:
    return Evidence(
        project_id="proj-1",
        request_id=request_id,
        items=[
            item(
                "t1",
                "Connection refused: database pool exhausted (active=<*>)",
                "payment-service",
                40,
                ["Connection refused: database pool exhausted (active=50)", "user=<REDACTED> pool=main"],
            ),
            item(
                "t2",
                "Timeout waiting for DB connection after <*>s",
                "checkout-service",
                12,
                ["Timeout waiting for DB connection after 30s"],
            ),
            *extra,
        ],
    )


def answer(**overrides: Any) -> dict[str, Any]:
    return {
        "summary": "The payment database connection pool is exhausted.",
        "severity": "critical",
        "error_type": "ConnectionPoolExhausted",
        "root_cause": "More concurrent requests than pooled connections.",
        "remediation": ["Raise the pool size", "Find leaked connections"],
        "notify": True,
        "confidence": 0.8,
        "citations": [
            {"template_id": "t1", "reason": "The pool refuses connections."},
            {"template_id": "t2", "reason": "Callers time out waiting for one."},
        ],
        **overrides,
    }


class FakeRules:
    """The injected fallback: stands in for the rules engine, counting its calls."""

    name = "rules"

    def __init__(self) -> None:
        self.calls = 0

    async def analyze(self, evidence: Evidence) -> Analysis:
        self.calls += 1
        return Analysis(
            summary="Database connections are failing.",
            severity="warning",
            error_type="Unknown",
            root_cause="Not known.",
            remediation=[],
            notify=False,
            confidence=0.3,
            services=evidence.services,
            records=evidence.records,
            evidence=[],
            engine="rules",
            known=False,
        )


def new_server(provider: str, **kwargs: Any) -> ModelServer:
    kinds: dict[str, type[ModelServer]] = {
        "openai": OpenAIServer,
        "anthropic": AnthropicServer,
        "gemini": GeminiServer,
    }
    return kinds[provider](api_key=KEYS[provider], **kwargs)


def config_for(provider: str, server: ModelServer, **overrides: Any) -> LlmConfig:
    base_url = server.api_base if isinstance(server, OpenAIServer) else server.base_url
    values: dict[str, Any] = {
        "provider": provider,
        "model": "test-model",
        "base_url": base_url,
        "api_key": KEYS[provider],
        "timeout_s": 5.0,
        "max_retries": 2,
        "max_output_tokens": 256,
        **overrides,
    }
    return LlmConfig(**values)


class Rig:
    """An engine wired to a server double, a budget in memory and the fake rules engine."""

    def __init__(self, config: LlmConfig, budget: TokenBudget | None = None) -> None:
        self.config = config
        self.budget = budget or TokenBudget(MemoryUsageStore())
        self.fallback = FakeRules()
        self.engine = LlmEngine(config, build_model(config), self.budget, self.fallback)

    async def analyze(self, evidence: Evidence | None = None) -> Analysis:
        return await self.engine.analyze(evidence or make_evidence())


@pytest.fixture(params=PROVIDERS)
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, ModelServer]]:
    async with new_server(request.param) as server:
        yield request.param, server


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer(api_key=KEYS["openai"]) as server:
        yield server


async def rig_for(provider: str, server: ModelServer, **overrides: Any) -> Rig:
    return Rig(config_for(provider, server, **overrides))


# --- answers -----------------------------------------------------------------------------------


async def test_a_valid_answer_becomes_the_analysis(served: tuple[str, ModelServer]) -> None:
    provider, server = served
    rig = await rig_for(provider, server)
    server.reply_json(answer())
    try:
        analysis = await rig.analyze()
    finally:
        await rig.engine.aclose()

    assert type(analysis) is Analysis
    assert analysis.engine == "llm"
    assert analysis.known is True
    assert (analysis.summary, analysis.severity, analysis.error_type) == (
        "The payment database connection pool is exhausted.",
        "critical",
        "ConnectionPoolExhausted",
    )
    assert analysis.remediation == ["Raise the pool size", "Find leaked connections"]
    assert (analysis.notify, analysis.confidence) == (True, 0.8)
    assert analysis.services == ["checkout-service", "payment-service"]
    assert analysis.records == 52
    assert [(c.template_id, c.service, c.count) for c in analysis.evidence] == [
        ("t1", "payment-service", 40),
        ("t2", "checkout-service", 12),
    ]
    assert analysis.evidence[0].template == "Connection refused: database pool exhausted (active=<*>)"
    assert analysis.tokens == 150  # the double's usage: 100 in, 50 out
    assert rig.fallback.calls == 0
    assert (await rig.budget.usage("proj-1"))["tokens_today"] == 150

    [request] = server.requests
    prompt = server.prompt(request)
    for text in (
        "Connection refused: database pool exhausted (active=<*>)",
        "Timeout waiting for DB connection after <*>s",
        "user=<REDACTED> pool=main",
        "payment-service",
        '"count":40',
        '"id":"t1"',
    ):
        assert text in prompt
    assert KEYS[provider] not in request.body.decode()
    assert KEYS[provider] not in request.query


def answer_schema() -> dict[str, Any]:
    return ModelAnswer.model_json_schema()


async def test_each_provider_sends_its_auth_and_forces_the_answer_tool(
    served: tuple[str, ModelServer],
) -> None:
    provider, server = served
    rig = await rig_for(provider, server)
    server.reply_json(answer())
    try:
        await rig.analyze()
    finally:
        await rig.engine.aclose()
    [request] = server.requests
    body = request.json()
    expected = set(answer_schema()["properties"])
    if provider == "openai":
        assert request.header("authorization") == f"Bearer {KEYS['openai']}"
        [tool] = body["tools"]
        assert body["tool_choice"] == "required"
        assert tool["function"]["strict"] is True
        assert set(tool["function"]["parameters"]["properties"]) == expected
        assert strict_schema_problem(tool["function"]["parameters"]) is None
        assert body["max_tokens"] == 256  # what every compatible server knows
        assert body["temperature"] == 0
    elif provider == "anthropic":
        presented = request.header("x-api-key") or request.header("authorization")
        assert presented in (KEYS["anthropic"], f"Bearer {KEYS['anthropic']}")
        assert request.header("anthropic-version")
        [tool] = body["tools"]
        assert body["tool_choice"]["type"] in ("any", "tool")
        assert set(tool["input_schema"]["properties"]) == expected
        assert body["max_tokens"] == 256
    else:
        assert request.header("x-goog-api-key") == KEYS["gemini"]
        assert request.path == "/v1beta/models/test-model:generateContent"
        [declaration] = body["tools"][0]["functionDeclarations"]
        assert body["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"
        schema = declaration.get("parameters_json_schema") or declaration.get("parametersJsonSchema")
        assert set(schema["properties"]) == expected
        assert body["generationConfig"]["maxOutputTokens"] == 256


async def test_invented_citations_are_dropped(openai: OpenAIServer) -> None:
    rig = await rig_for("openai", openai)
    cited = [
        {"template_id": "t2", "reason": "real"},
        {"template_id": "t999", "reason": "made up"},
        {"template_id": "t2", "reason": "cited twice"},
    ]
    openai.reply_json(answer(citations=cited))
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert [(c.template_id, c.reason) for c in analysis.evidence] == [("t2", "real")]


async def test_unknown_error_type_is_not_known(openai: OpenAIServer) -> None:
    rig = await rig_for("openai", openai)
    openai.reply_json(answer(error_type="Unknown", confidence=0.1))
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert (analysis.engine, analysis.known) == ("llm", False)


async def test_a_fenced_prose_answer_from_anthropic_is_accepted() -> None:
    async with AnthropicServer(api_key=KEYS["anthropic"]) as server:
        rig = await rig_for("anthropic", server)
        # Not a JSON object, so the double answers with a text block, as a model ignoring the tool would.
        server.reply_text("```json\n" + orjson.dumps(answer()).decode() + "\n```")
        analysis = await rig.analyze()
        await rig.engine.aclose()
    assert analysis.engine == "llm"
    assert analysis.error_type == "ConnectionPoolExhausted"


async def test_servers_without_tool_calls_get_the_schema_in_the_prompt() -> None:
    async with OpenAIServer(api_key=KEYS["openai"], reject_tools=True) as server:
        rig = await rig_for("openai", server)
        server.reply_json(answer(), answer())
        first = await rig.analyze()
        second = await rig.analyze()
        await rig.engine.aclose()
    assert (first.engine, second.engine) == ("llm", "llm")
    assert first.error_type == "ConnectionPoolExhausted"
    with_tools = ["tools" in r.json() for r in server.requests]
    assert with_tools == [True, False, False]  # remembered after the first refusal
    assert [r.status for r in server.requests] == [400, 200, 200]
    assert '"citations"' in server.prompt(server.requests[1])  # the schema, in the prompt


async def test_usage_is_estimated_when_the_server_reports_none() -> None:
    async with OpenAIServer(api_key=KEYS["openai"], usage=None) as server:
        budget = TokenBudget(MemoryUsageStore())
        rig = Rig(config_for("openai", server), budget)
        server.reply_json(answer())
        analysis = await rig.analyze()
        await rig.engine.aclose()
        [request] = server.requests
    assert analysis.engine == "llm"
    prompt_tokens = len(server.prompt(request)) // 4
    reply_tokens = len(orjson.dumps(answer())) // 4
    assert analysis.tokens >= prompt_tokens + reply_tokens  # chars/4 of what went each way
    assert (await budget.usage("proj-1"))["tokens_today"] == analysis.tokens


# --- invalid output ----------------------------------------------------------------------------


def validation_feedback(prompt: str) -> str:
    """What a repair request shows the model after the evidence: its rejected reply and why it was
    rejected (apart from the evidence, which names fields too)."""
    evidence = build_prompt(make_evidence())
    assert evidence in prompt
    return prompt.split(evidence, 1)[1]


async def test_malformed_output_is_repaired_once(served: tuple[str, ModelServer]) -> None:
    provider, server = served
    rig = await rig_for(provider, server)
    server.reply_text('{"summary": "cut off', orjson.dumps(answer()).decode())
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert analysis.engine == "llm"
    assert analysis.tokens == 300  # both calls count
    assert len(server.requests) == 2
    repair = server.prompt(server.requests[1])
    feedback = validation_feedback(repair)
    assert "EOF while parsing" in feedback  # why the reply was rejected ...
    assert '"cut off' in feedback  # ... and the reply itself
    assert "Connection refused: database pool exhausted" in repair  # the evidence again


async def test_malformed_output_twice_falls_back(served: tuple[str, ModelServer]) -> None:
    provider, server = served
    rig = await rig_for(provider, server)
    server.reply_text("I think the database is down.", "Still not JSON, sorry.")
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert (analysis.engine, analysis.fallback_reason) == ("rules", "invalid_output")
    assert analysis.tokens == 300
    assert len(server.requests) == 2
    assert rig.fallback.calls == 1


async def test_one_repair_in_all_whether_the_answer_was_text_or_a_tool_call(openai: OpenAIServer) -> None:
    rig = await rig_for("openai", openai)
    openai.reply_text("I think it is the pool.", orjson.dumps({"severity": "sev1"}).decode(), "never asked")
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "invalid_output"
    assert len(openai.requests) == 2


async def test_output_that_violates_the_schema_falls_back(served: tuple[str, ModelServer]) -> None:
    provider, server = served
    rig = await rig_for(provider, server)
    wrong = answer(severity="catastrophic", confidence=7, error_type="pool exhausted")
    server.reply_json(wrong, wrong)
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "invalid_output"
    repair = server.prompt(server.requests[1])
    for field in ("severity", "confidence", "error_type"):
        assert field in validation_feedback(repair)


async def test_extra_fields_violate_the_schema(openai: OpenAIServer) -> None:
    rig = await rig_for("openai", openai)
    openai.reply_json(answer(secret_plan="x"), answer())
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert analysis.engine == "llm"
    assert "secret_plan" in openai.prompt(openai.requests[1])


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
async def test_a_retryable_status_is_retried(served: tuple[str, ModelServer], status: int) -> None:
    provider, server = served
    rig = await rig_for(provider, server)
    # Gemini's 429 says when to come back in its body (RetryInfo, "0s" in the double).
    headers = {} if (provider, status) == ("gemini", 429) else {"Retry-After": "0"}
    server.fail_next(1, status, headers=headers)
    server.reply_json(answer())
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert analysis.engine == "llm"
    assert [r.status for r in server.requests] == [status, 200]


async def test_retry_after_is_honoured(openai: OpenAIServer) -> None:
    rig = await rig_for("openai", openai)
    openai.fail_next(1, 429, headers={"retry-after-ms": "400"})  # OpenAI's; Retry-After counts whole seconds
    openai.reply_json(answer())
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert analysis.engine == "llm"
    first, second = openai.requests
    assert second.received_at - first.received_at >= 0.35


async def test_a_retry_after_too_long_to_wait_for_falls_back_at_once(openai: OpenAIServer) -> None:
    rig = await rig_for("openai", openai)
    openai.fail_next(1, 429, headers={"Retry-After": "3600"})
    started = time.monotonic()
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert time.monotonic() - started < 2
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "provider_error"
    assert len(openai.requests) == 1


async def test_retries_are_bounded(served: tuple[str, ModelServer]) -> None:
    provider, server = served
    rig = await rig_for(provider, server, max_retries=2)
    server.fail_next(3, 503, headers={"Retry-After": "0"})
    server.reply_json(answer())
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "provider_error"
    assert len(server.requests) == 3


async def test_a_client_error_is_not_retried(served: tuple[str, ModelServer]) -> None:
    provider, server = served
    rig = await rig_for(provider, server)
    server.fail_next(1, 400)
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "provider_error"
    assert len(server.requests) == 1


async def test_a_timeout_falls_back(served: tuple[str, ModelServer]) -> None:
    provider, server = served
    rig = await rig_for(provider, server, timeout_s=0.2, max_retries=1)
    server.delay_next(2, seconds=2.0)
    server.reply_json(answer(), answer())
    started = time.monotonic()
    analysis = await rig.analyze()
    elapsed = time.monotonic() - started
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert (analysis.engine, analysis.fallback_reason, analysis.tokens) == ("rules", "timeout", 0)
    assert elapsed < 1.9  # neither attempt waited for the server's answer
    assert len(server.requests) == 2  # a timeout is retried


async def test_an_unreachable_server_falls_back() -> None:
    server = OpenAIServer()
    server.start()
    base_url = server.api_base
    server.stop()
    rig = Rig(LlmConfig(provider="openai", model="m", base_url=base_url, max_retries=0, timeout_s=2))
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "provider_error"


async def test_the_api_key_is_in_no_error_message_or_log(
    served: tuple[str, ModelServer], caplog: pytest.LogCaptureFixture
) -> None:
    provider, server = served
    caplog.set_level(logging.DEBUG)
    wrong_key = f"{KEYS[provider]}-WRONG-do-not-leak"
    config = config_for(provider, server, api_key=wrong_key)
    with pytest.raises(ModelHTTPError) as raised:
        await Agent(build_model(config), model_settings=model_settings(config)).run("hello")
    error = model_error(raised.value, config)
    assert error.retryable is False  # a permanent error: retrying cannot help
    assert error.status in (400, 401)
    rig = Rig(config)
    server.reply_json(answer())
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "provider_error"
    if provider == "openai":  # the double echoes the key it was given; the message must not
        assert "Incorrect API key provided: ***" in str(error)
    assert wrong_key not in str(error)
    assert wrong_key not in repr(error)
    assert wrong_key not in repr(config)
    assert wrong_key not in caplog.text
    assert wrong_key not in analysis.model_dump_json()


def test_errors_are_retryable_or_permanent() -> None:
    config = LlmConfig(provider="openai", model="m", api_key="sk-x")
    cases = {
        ModelHTTPError.for_category(ModelRateLimitError, status_code=429, model_name="m"): (True, False),
        ModelHTTPError.for_category(ModelServerError, status_code=503, model_name="m"): (True, False),
        ModelTimeoutError("m", "read timed out"): (True, True),
        ModelHTTPError.for_category(ModelRequestRejectedError, status_code=400, model_name="m"): (
            False,
            False,
        ),
        ModelHTTPError.for_category(ModelAuthenticationError, status_code=401, model_name="m"): (
            False,
            False,
        ),
    }
    for exc, (retryable, timeout) in cases.items():
        error = model_error(exc, config)
        assert (error.retryable, error.timeout) == (retryable, timeout), exc


# --- budget ------------------------------------------------------------------------------------


async def test_the_daily_budget_stops_calls_before_they_are_made(openai: OpenAIServer) -> None:
    budget = TokenBudget(MemoryUsageStore(), BudgetLimits(tokens_per_day=10_000))
    rig = Rig(config_for("openai", openai), budget)
    openai.usage = (8_000, 1_500)  # the first call leaves less than any call's estimate
    openai.reply_json(answer(), answer())
    first = await rig.analyze()
    second = await rig.analyze(make_evidence(request_id="req-2"))
    await rig.engine.aclose()

    assert first.engine == "llm"
    assert isinstance(second, FallbackAnalysis)
    assert (second.engine, second.fallback_reason, second.tokens) == ("rules", "budget_exhausted", 0)
    assert len(openai.requests) == 1  # no HTTP call once the budget is spent
    usage = await budget.usage("proj-1")
    assert (usage["tokens_today"], usage["tokens_per_day"], usage["remaining_today"]) == (9_500, 10_000, 500)


async def test_a_spent_budget_makes_no_request_at_all(served: tuple[str, ModelServer]) -> None:
    provider, server = served
    budget = TokenBudget(MemoryUsageStore(), BudgetLimits(tokens_per_day=1_000))
    await budget.record("proj-1", "earlier", 999)
    rig = Rig(config_for(provider, server), budget)
    server.reply_json(answer())
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "budget_exhausted"
    assert server.requests == []


async def test_the_incident_budget_is_per_incident(openai: OpenAIServer) -> None:
    budget = TokenBudget(MemoryUsageStore(), BudgetLimits(tokens_per_incident=10_000))
    rig = Rig(config_for("openai", openai), budget)
    openai.usage = (8_000, 1_500)
    openai.reply_json(answer(), answer())
    first = await rig.analyze()
    again = await rig.analyze(make_evidence(request_id="req-2"))  # the same templates: one incident
    other = await rig.analyze(
        make_evidence(item("t3", "Disk full on <*>", "storage", 3, []), request_id="req-3")
    )
    await rig.engine.aclose()

    assert first.engine == "llm"
    assert isinstance(again, FallbackAnalysis)
    assert again.fallback_reason == "budget_exhausted"
    assert other.engine == "llm"
    assert len(openai.requests) == 2
    usage = await budget.usage("proj-1")
    assert usage["tokens_today"] == 19_000
    assert sorted(i["remaining"] for i in usage["incidents"].values()) == [500, 500]


async def test_a_repair_is_also_held_to_the_budget(openai: OpenAIServer) -> None:
    budget = TokenBudget(MemoryUsageStore(), BudgetLimits(tokens_per_day=10_000))
    rig = Rig(config_for("openai", openai), budget)
    openai.usage = (8_000, 1_500)
    openai.reply_text("not json", orjson.dumps(answer()).decode())
    analysis = await rig.analyze()
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert (analysis.fallback_reason, analysis.tokens) == ("budget_exhausted", 9_500)
    assert len(openai.requests) == 1


# --- prompt and config -------------------------------------------------------------------------


def test_the_prompt_is_bounded() -> None:
    many = [item(f"x{i}", f"template {i} <*>", "svc", i + 1, []) for i in range(MAX_ITEMS + 5)]
    long_sample = "s" * 1_000
    noisy = item("big", "t" * 2_000, "svc", 10_000, [long_sample, "a", "a", "b", "c"])
    prompt = build_prompt(make_evidence(noisy, *many))
    document = orjson.loads(prompt.removeprefix("Evidence:\n"))
    problems = document["problems"]
    assert len(problems) == MAX_ITEMS
    assert document["problems_not_shown"] == 2 + MAX_ITEMS + 5 + 1 - MAX_ITEMS
    assert problems[0]["id"] == "big"  # most frequent first
    assert len(problems[0]["template"]) <= 500
    assert problems[0]["samples"] == ["s" * 299 + "…", "a", "b"]  # clipped, deduplicated, three
    assert document["records"] == 52 + 10_000 + sum(range(1, MAX_ITEMS + 6))


async def test_no_evidence_goes_to_the_fallback_without_a_call(openai: OpenAIServer) -> None:
    rig = await rig_for("openai", openai)
    analysis = await rig.analyze(Evidence(project_id="proj-1", request_id="r", items=[]))
    await rig.engine.aclose()
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "no_evidence"
    assert openai.requests == []


def test_config_takes_its_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_TIMEOUT_SECONDS", raising=False)
    assert LlmConfig(provider="openai", model="m", api_key="k").timeout_s == 30
    monkeypatch.setenv("AI_TIMEOUT_SECONDS", "7.5")
    assert LlmConfig(provider="openai", model="m", api_key="k").timeout_s == 7.5
    assert LlmConfig(provider="openai", model="m", api_key="k", timeout_s=2).timeout_s == 2
    monkeypatch.setenv("AI_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ValueError, match="AI_TIMEOUT_SECONDS"):
        LlmConfig(provider="openai", model="m", api_key="k")


def test_config_needs_a_key_for_hosted_apis_but_not_for_local_servers() -> None:
    with pytest.raises(ValueError, match="api_key"):
        LlmConfig(provider="anthropic", model="m")
    local = LlmConfig(provider="openai", model="llama3", base_url="http://localhost:11434/v1/")
    assert local.base_url == "http://localhost:11434/v1"
    with pytest.raises(ValueError, match="base_url"):
        LlmConfig(provider="openai", model="m", base_url="localhost:11434")
    assert "sk-hidden" not in repr(LlmConfig(provider="openai", model="m", api_key="sk-hidden"))


async def test_a_local_server_without_a_key_gets_no_real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDKs read the vendor's key from the environment when given none: it must not reach
    # another server.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    async with OpenAIServer() as server:
        rig = Rig(LlmConfig(provider="openai", model="llama3", base_url=server.api_base))
        server.reply_json(answer())
        analysis = await rig.analyze()
        await rig.engine.aclose()
    assert analysis.engine == "llm"
    assert "sk-from-the-environment" not in str(server.requests[0].headers)
    assert server.requests[0].header("authorization") in (None, f"Bearer {NO_KEY}")


@pytest.mark.parametrize("provider", ["groq", "mistral"])
async def test_groq_and_mistral_speak_chat_completions_through_their_sdks(provider: str) -> None:
    async with OpenAIServer(api_key="gk-test-3f9a") as server:
        config = LlmConfig(provider=provider, model="m", base_url=server.base_url, api_key="gk-test-3f9a")
        rig = Rig(config)
        server.fail_next(1, 503, headers={"Retry-After": "0"})
        server.reply_json(answer())
        analysis = await rig.analyze()
        await rig.engine.aclose()
    assert (analysis.engine, analysis.error_type, analysis.tokens) == ("llm", "ConnectionPoolExhausted", 150)
    assert [r.status for r in server.requests] == [503, 200]  # retried by Vigil's policy
    assert server.requests[1].header("authorization") == "Bearer gk-test-3f9a"
    assert server.requests[1].json()["tool_choice"] in ("required", "any")


def test_every_provider_builds_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # Bedrock's region, as for any AWS client
    for provider in ALL_PROVIDERS:
        config = LlmConfig(provider=provider, model="some-model", api_key="k", base_url="http://127.0.0.1:9")
        assert build_model(config).model_name == "some-model"
    signed = build_model(LlmConfig(provider="bedrock", model="anthropic.claude-test", timeout_s=7))
    assert signed.client.meta.config.retries["total_max_attempts"] == 1  # Vigil's retries only
    assert signed.client.meta.config.read_timeout == 7
    settings_providers = get_args(get_args(LlmSettings.model_fields["provider"].annotation)[0])
    assert set(settings_providers) == set(ALL_PROVIDERS)
