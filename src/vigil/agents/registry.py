"""Agents by endpoint scheme: `http(s)://` posts to the team's agent, `builtin:<name>` runs one of
Vigil's in-process. Adding a kind is one class and one branch here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vigil.agents.builtin.agent import BuiltinAgent
from vigil.agents.builtin.engine import Engine
from vigil.agents.builtin.recommend import RunbookSource
from vigil.agents.http import HttpAgent
from vigil.outbound import Outbound
from vigil.receivers.agent_output import OutputIntake
from vigil.specs import AgentSpec


class Agent(Protocol):
    async def send(self, project_id: str, request_id: str, body: bytes, attempt: int) -> None:
        """Hand a batch (a JSON array of flat records) over; raise DeliveryError on failure."""


@dataclass
class AgentContext:
    client: Outbound
    intake: OutputIntake
    rules: Engine
    llm: Engine | None
    runbooks: RunbookSource | None = None
    """The project's configured runbooks, from which built-in agents recommend one."""


def build_agent(spec: AgentSpec, context: AgentContext) -> Agent:
    if spec.endpoint.startswith("builtin:"):
        name = spec.endpoint.removeprefix("builtin:")
        if spec.engine == "llm" and context.llm is not None:
            return BuiltinAgent(name, context.llm, context.intake, runbooks=context.runbooks)
        reason = "llm_not_configured" if spec.engine == "llm" else None
        return BuiltinAgent(
            name, context.rules, context.intake, fallback_reason=reason, runbooks=context.runbooks
        )
    return HttpAgent(spec, context.client)
