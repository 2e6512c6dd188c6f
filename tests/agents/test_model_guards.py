"""The llm engine's logic and the guards any model-using agent gets, on pydantic-ai's own test
models (TestModel, FunctionModel): no HTTP, the model's answers and failures scripted in Python."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import (
    ModelHTTPError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelRequestTimeout,
)
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

from tests.agents.test_llm_engine import FakeRules, answer, make_evidence
from vigil.agents.builtin.budget import BudgetExhausted, BudgetLimits, MemoryUsageStore, TokenBudget
from vigil.agents.builtin.llm import FallbackAnalysis, LlmEngine, build_prompt
from vigil.agents.builtin.model_guards import TokenBudgetGuard, guard_capabilities
from vigil.agents.builtin.model_registry import LlmConfig, model_settings

CONFIG = LlmConfig(provider="openai", model="m", api_key="sk-test", max_retries=2, max_output_tokens=100)


def engine_with(model: Any, budget: TokenBudget | None = None) -> tuple[LlmEngine, FakeRules, TokenBudget]:
    budget = budget or TokenBudget(MemoryUsageStore())
    rules = FakeRules()
    return LlmEngine(CONFIG, model, budget, rules), rules, budget


def final(info: AgentInfo, args: dict[str, Any], tokens: tuple[int, int] = (100, 50)) -> ModelResponse:
    [tool] = info.output_tools
    return ModelResponse(
        parts=[ToolCallPart(tool.name, args)],
        usage=RequestUsage(input_tokens=tokens[0], output_tokens=tokens[1]),
    )


class Script:
    """A FunctionModel's function: each call takes the next step (a reply or an exception)."""

    def __init__(self, *steps: Any) -> None:
        self.steps = list(steps)
        self.seen: list[list[ModelMessage]] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.seen.append(list(messages))
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return final(info, step) if isinstance(step, dict) else ModelResponse(parts=[TextPart(step)])


async def test_test_model_answers_through_the_answer_tool() -> None:
    engine, rules, budget = engine_with(TestModel(custom_output_args=answer(error_type="PoolExhausted")))
    analysis = await engine.analyze(make_evidence())
    assert (analysis.engine, analysis.error_type) == ("llm", "PoolExhausted")
    assert rules.calls == 0
    assert analysis.tokens > 0
    assert (await budget.usage("proj-1"))["tokens_today"] == analysis.tokens


async def test_the_prompt_is_the_evidence_and_the_instructions() -> None:
    script = Script(answer())
    engine, _, _ = engine_with(FunctionModel(script))
    analysis = await engine.analyze(make_evidence())
    assert (analysis.engine, analysis.tokens) == ("llm", 150)
    [messages] = script.seen
    [request] = messages
    user = [part.content for part in request.parts if part.part_kind == "user-prompt"]
    assert user == [build_prompt(make_evidence())]
    assert "user=<REDACTED>" in user[0]  # evidence arrives redacted and goes as it is
    assert "on-call engineer" in (request.instructions or "")


async def test_a_rate_limit_is_retried_after_the_wait_asked() -> None:
    limited = ModelHTTPError.for_category(ModelRateLimitError, status_code=429, model_name="m", retry_after=0)
    script = Script(limited, limited, answer())
    engine, _, _ = engine_with(FunctionModel(script))
    analysis = await engine.analyze(make_evidence())
    assert analysis.engine == "llm"
    assert len(script.seen) == 3  # max_retries=2


async def test_what_breaks_the_answer_schema_is_not_accepted() -> None:
    # TestModel's own values for the schema: strings like "a", which error_type's pattern refuses.
    engine, rules, _ = engine_with(TestModel())
    analysis = await engine.analyze(make_evidence())
    assert isinstance(analysis, FallbackAnalysis)
    assert (analysis.fallback_reason, rules.calls) == ("invalid_output", 1)


async def test_a_permanent_error_is_not_retried() -> None:
    rejected = ModelHTTPError.for_category(ModelRequestRejectedError, status_code=400, model_name="m")
    script = Script(rejected, answer())
    engine, rules, _ = engine_with(FunctionModel(script))
    analysis = await engine.analyze(make_evidence())
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "provider_error"
    assert (len(script.seen), rules.calls) == (1, 1)


async def test_any_other_failure_of_the_call_falls_back_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(RuntimeError("Unable to locate credentials for sk-test"))
    engine, rules, _ = engine_with(FunctionModel(script))
    analysis = await engine.analyze(make_evidence())
    assert isinstance(analysis, FallbackAnalysis)
    assert (analysis.fallback_reason, rules.calls) == ("provider_error", 1)
    assert "Unable to locate credentials for ***" in caplog.text
    assert "sk-test" not in caplog.text


async def test_a_request_deadline_is_a_timeout() -> None:
    script = Script(ModelRequestTimeout("m", 5.0))
    engine, _, _ = engine_with(FunctionModel(script))
    analysis = await engine.analyze(make_evidence())
    assert isinstance(analysis, FallbackAnalysis)
    assert analysis.fallback_reason == "timeout"


async def test_an_invalid_answer_gets_its_errors_and_one_more_chance() -> None:
    script = Script(answer(confidence=3), answer(severity="sev1"), answer())
    engine, _, _ = engine_with(FunctionModel(script))
    analysis = await engine.analyze(make_evidence())
    assert isinstance(analysis, FallbackAnalysis)
    assert (analysis.fallback_reason, analysis.tokens) == ("invalid_output", 300)
    assert len(script.seen) == 2
    feedback = [
        str(part.content)
        for part in script.seen[1][-1].parts
        if part.part_kind in ("retry-prompt", "tool-return")
    ]
    assert any("confidence" in text for text in feedback)


async def test_a_server_reporting_no_usage_is_charged_an_estimate() -> None:
    def no_usage(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return final(info, answer(), tokens=(0, 0))

    engine, _, budget = engine_with(FunctionModel(no_usage))
    analysis = await engine.analyze(make_evidence())
    assert analysis.tokens >= len(build_prompt(make_evidence())) // 4
    assert (await budget.usage("proj-1"))["tokens_today"] == analysis.tokens


# --- the guards on a tool-using agent, as an investigation would use them ------------------------


async def test_a_tool_using_agent_is_charged_for_each_request_and_stopped_by_the_budget() -> None:
    budget = TokenBudget(MemoryUsageStore(), BudgetLimits(tokens_per_incident=5_000))
    calls: list[str] = []

    def investigate(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returned = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
        usage = RequestUsage(input_tokens=2_000, output_tokens=500)
        if not returned:
            return ModelResponse(parts=[ToolCallPart("recent_logs", {"service": "payment"})], usage=usage)
        return ModelResponse(parts=[TextPart("the pool is exhausted")], usage=usage)

    agent = Agent(FunctionModel(investigate), model_settings=model_settings(CONFIG))

    @agent.tool_plain
    def recent_logs(service: str) -> str:
        calls.append(service)
        return "pool exhausted (active=50)"

    capabilities = guard_capabilities(CONFIG, budget, "proj-1", "incident-1")
    result = await agent.run("why?", capabilities=capabilities)
    guard = capabilities[0]
    assert isinstance(guard, TokenBudgetGuard)
    assert (result.output, calls, guard.spent) == ("the pool is exhausted", ["payment"], 5_000)

    again = guard_capabilities(CONFIG, budget, "proj-1", "incident-1")
    with pytest.raises(BudgetExhausted):
        await agent.run("and now?", capabilities=again)
    assert calls == ["payment"]  # refused before the first request: nothing ran
    other = await agent.run("elsewhere?", capabilities=guard_capabilities(CONFIG, budget, "proj-1", "i-2"))
    assert other.output == "the pool is exhausted"
