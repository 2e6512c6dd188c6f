"""`POST /internal/agent-output`: an agent's answer to a batch, accepted once it is on the bus."""

from __future__ import annotations

import uuid

import orjson
from prometheus_client import Counter

from vigil.bus.client import Bus
from vigil.bus.topology import outputs_subject
from vigil.errors import Forbidden, NotFound
from vigil.outputs import AgentOutputIn, OutputEnvelope
from vigil.store.repo import Store, utcnow

OUTPUTS_ACCEPTED = Counter("vigil_agent_outputs_total", "Agent outputs accepted.")

_OUTPUT_NAMESPACE = uuid.UUID("5b0c1c3e-8f7a-4a43-9d0e-6f6f0a1d2b7c")


class OutputIntake:
    def __init__(self, bus: Bus, store: Store) -> None:
        self._bus = bus
        self._store = store
        self._batch_owner: dict[str, tuple[str, str, int]] = {}

    async def accept(
        self, project_id: str, body: AgentOutputIn, idempotency_key: str | None
    ) -> OutputEnvelope:
        owner_project, pipeline, records = await self._batch(body.request_id)
        if owner_project != project_id:
            raise Forbidden(
                "that request id belongs to another project",
                details={"request_id": body.request_id},
            )
        if idempotency_key:
            # The same key always names the same output, so a retried post is delivered once.
            output_id = str(uuid.uuid5(_OUTPUT_NAMESPACE, f"{project_id}/{idempotency_key}"))
        else:
            output_id = str(uuid.uuid4())
        envelope = OutputEnvelope(
            id=output_id,
            project_id=project_id,
            request_id=body.request_id,
            pipeline=pipeline,
            batch_records=records,
            received_at=utcnow(),
            payload=body.payload,
        )
        headers = {"Vigil-Idempotency-Key": idempotency_key} if idempotency_key else None
        await self._bus.publish(
            outputs_subject(project_id),
            orjson.dumps(envelope.model_dump(mode="json")),
            msg_id=output_id,
            headers=headers,
        )
        OUTPUTS_ACCEPTED.inc()
        return envelope

    async def _batch(self, request_id: str) -> tuple[str, str, int]:
        known = self._batch_owner.get(request_id)
        if known is not None:
            return known
        batch = await self._store.get_batch(request_id)
        if batch is None:
            raise NotFound(
                "unknown request id: it names no batch Vigil sent", details={"request_id": request_id}
            )
        owner = (batch.project_id, batch.pipeline, batch.record_count)
        if len(self._batch_owner) > 50_000:
            self._batch_owner.clear()
        self._batch_owner[request_id] = owner
        return owner
