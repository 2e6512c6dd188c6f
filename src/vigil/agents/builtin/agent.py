"""`builtin:<name>` agents: run in-process on a batch, answer through the same output path as
an external agent, so sinks, idempotency and the outputs API treat them alike."""

from __future__ import annotations

from typing import Any

import orjson

from vigil.agents.builtin.engine import Engine
from vigil.agents.builtin.evidence import build_evidence
from vigil.agents.builtin.recommend import RunbookSource, recommend
from vigil.errors import DeliveryError, TransientError
from vigil.outputs import AgentOutputIn
from vigil.receivers.agent_output import OutputIntake


class BuiltinAgent:
    """The classifier and enricher of the agent protocol's example, with an engine chosen per pipeline."""

    def __init__(
        self,
        name: str,
        engine: Engine,
        intake: OutputIntake,
        *,
        fallback_reason: str | None = None,
        runbooks: RunbookSource | None = None,
    ) -> None:
        self.name = name
        self._runbooks = runbooks
        self._engine = engine
        self._intake = intake
        self._fallback_reason = fallback_reason

    async def send(self, project_id: str, request_id: str, body: bytes, attempt: int) -> None:
        records: list[dict[str, Any]] = orjson.loads(body)
        evidence = build_evidence(project_id, request_id, records)
        try:
            analysis = await self._engine.analyze(evidence)
        except Exception as exc:
            raise DeliveryError(
                f"builtin:{self.name}: engine failed: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if self._runbooks is not None:
            analysis = recommend(analysis, await self._runbooks(project_id))
        if self._fallback_reason and analysis.fallback_reason is None:
            analysis = analysis.model_copy(update={"fallback_reason": self._fallback_reason})
        payload = {"agent": f"builtin:{self.name}", **analysis.model_dump(mode="json")}
        try:
            await self._intake.accept(
                project_id, AgentOutputIn(request_id=request_id, payload=payload), f"builtin:{request_id}"
            )
        except TransientError as exc:
            raise DeliveryError(f"builtin:{self.name}: {exc.message}", retryable=True) from exc
