"""The workflow's LLM analysis, with pydantic-ai's FunctionModel as the model, on a running Vigil's
records: the model calls the investigation tools (bounded, charged to the incident), its runbook
must be configured and its citations returned by a tool in this run (else it is asked again once),
and whatever stops it leaves the rules analysis standing with the reason."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from tests.conftest import VigilHandle
from tests.investigate.tools_setup import (
    SERVICE,
    add_incident,
    budget,
    context,
    send_records,
    wait_for_records,
)
from vigil.agents.builtin.budget import TokenBudget
from vigil.settings import InvestigateSettings
from vigil.workflow.analysis import Analyst, investigate
from vigil.workflow.runbooks import Runbook, RunbookSpec

POOL_BOOK = Runbook(
    id="grow-pool",
    spec=RunbookSpec.model_validate(
        {
            "match": {"error_types": ["ConnectionPoolExhausted"]},
            "steps": [{"action": "notify", "params": {"message": "x"}}],
        }
    ),
)
RECORD = re.compile(r"\[(record:[0-9a-f]+)\]")


@dataclass
class Case:
    vigil: VigilHandle
    project_id: str
    incident: dict[str, Any]
    analyst: Analyst
    budget: TokenBudget


@pytest.fixture
async def case(vigil: VigilHandle) -> AsyncIterator[Case]:
    project_id, key = await vigil.project_with_key("shop")
    await wait_for_records(vigil, project_id, await send_records(vigil, key))
    incident = await add_incident(vigil, project_id)
    spend = budget()
    analyst = Analyst(context(vigil, InvestigateSettings(), spend), engine="llm", budget=spend)
    try:
        yield Case(vigil, project_id, incident, analyst, spend)
    finally:
        await analyst.aclose()


def returned(messages: list[ModelMessage]) -> list[str]:
    """The tools' results the model has been shown so far."""
    return [
        str(part.content)
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    ]


def answer(info: AgentInfo, **fields: Any) -> ModelResponse:
    body = {
        "summary": "payment-service cannot get database connections",
        "error_type": "ConnectionPoolExhausted",
        "root_cause": "The HikariPool of payment-service is exhausted.",
        "confidence": 0.8,
        "runbook_id": "grow-pool",
        "citations": [],
        **fields,
    }
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, body)])


def investigator(first_answer: dict[str, Any] | None = None) -> FunctionModel:
    """Greps the recent errors for the pool, then answers citing a record the tool returned (after
    `first_answer`, when given, which the validation should refuse)."""
    seen: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(info.instructions or "")
        results = returned(messages)
        if not results:
            args = {"service": SERVICE, "severity": "error", "grep": "Connection is not available"}
            return ModelResponse(parts=[ToolCallPart("recent_records", args)])
        record = next(found[0] for r in results if (found := RECORD.findall(r)))
        retried = any("not returned by any tool" in r and "not a configured runbook" in r for r in results)
        if first_answer is not None and not retried:
            return answer(info, **first_answer)
        return answer(info, citations=[record])

    function = FunctionModel(model)
    function.seen = seen  # type: ignore[attr-defined]
    return function


async def analysed(case: Case, engine: str = "llm") -> dict[str, Any]:
    found = await investigate(case.analyst, case.project_id, "wf-1", case.incident, [POOL_BOOK], engine)  # type: ignore[arg-type]
    return found.analysis


async def resolves(case: Case, analysis: dict[str, Any]) -> None:
    assert analysis["citations"]
    for citation in analysis["citations"]:
        shown = await case.vigil.api.get(f"/api/v1/projects/{case.project_id}/citations/{citation['id']}")
        assert shown.status_code == 200, (citation, shown.text)


async def test_the_model_investigates_with_the_tools_and_cites_what_they_returned(case: Case) -> None:
    case.analyst.model = investigator()
    analysis = await analysed(case)
    assert analysis["engine"] == "llm" and "fallback_reason" not in analysis
    assert analysis["error_type"] == "ConnectionPoolExhausted" and analysis["known"] is True
    assert analysis["runbook_id"] == "grow-pool" and analysis["tool_calls"] == 1
    assert [c["kind"] for c in analysis["citations"]] == ["record"]
    await resolves(case, analysis)
    assert analysis["rules"]["error_type"] == "ConnectionPoolExhausted"  # the rules' reading, kept beside it
    usage = await case.budget.usage(case.project_id)
    assert usage["incidents"]["incident:inc-pool"]["tokens_total"] > 0  # tool results and requests charged


async def test_an_invented_citation_or_runbook_is_refused_and_asked_again_once(case: Case) -> None:
    case.analyst.model = investigator({"citations": ["record:0000"], "runbook_id": "delete-everything"})
    analysis = await analysed(case)
    assert analysis["engine"] == "llm" and analysis["runbook_id"] == "grow-pool", analysis.get(
        "fallback_detail"
    )
    assert "record:0000" not in {c["id"] for c in analysis["citations"]}
    await resolves(case, analysis)


async def test_a_model_that_keeps_inventing_falls_back_to_the_rules(case: Case) -> None:
    def stubborn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return answer(info, citations=["template:made-up"])

    case.analyst.model = FunctionModel(stubborn)
    analysis = await analysed(case)
    assert analysis["engine"] == "rules" and analysis["fallback_reason"] == "invalid_output"
    assert analysis["error_type"] == "ConnectionPoolExhausted"  # the rules engine's answer stands
    await resolves(case, analysis)


async def test_a_failing_model_or_a_spent_budget_falls_back_with_the_reason(case: Case) -> None:
    def broken(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ConnectionError("the model's server is down")

    case.analyst.model = FunctionModel(broken)
    analysis = await analysed(case)
    assert analysis["engine"] == "rules" and analysis["fallback_reason"] == "provider_error"
    assert "down" in analysis["fallback_detail"] and analysis["error_type"] == "ConnectionPoolExhausted"

    case.analyst.model = investigator()
    case.budget.set_limits(
        case.project_id, case.budget.limits_for(case.project_id).model_copy(update={"tokens_per_incident": 1})
    )
    analysis = await analysed(case)
    assert analysis["engine"] == "rules" and analysis["fallback_reason"] == "budget_exhausted"
    assert analysis["budget_exhausted"]  # the investigation itself stopped early, and says so
    assert "token budget" in analysis["summary"]


async def test_without_a_model_the_rules_answer_and_say_why(case: Case) -> None:
    analysis = await analysed(case)
    assert analysis["engine"] == "rules" and analysis["fallback_reason"] == "not_configured"
    rules = await analysed(case, "rules")
    assert "fallback_reason" not in rules and rules["error_type"] == "ConnectionPoolExhausted"
    await resolves(case, rules)


async def test_the_rules_count_every_record_the_tools_matched_not_only_those_returned(case: Case) -> None:
    few = Analyst(context(case.vigil, InvestigateSettings(max_lines=3), budget()))
    try:
        analysis = await analysed(Case(case.vigil, case.project_id, case.incident, few, case.budget), "rules")
    finally:
        await few.aclose()
    assert analysis["error_type"] == "ConnectionPoolExhausted" and analysis["records"] == 40
    assert len([c for c in analysis["citations"] if c["kind"] == "record"]) <= 3
    await resolves(case, analysis)
