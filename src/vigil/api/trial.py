"""Sending a test batch: to a pipeline's agent (what it answered) or through a sink (whether it
took the output), from the configuration as stored, so a form can be checked before real traffic
depends on it. Nothing is stored; the outbound policy applies as for real deliveries."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import APIRouter
from pydantic import TypeAdapter

from vigil import __version__
from vigil.errors import DeliveryError
from vigil.masking import mask_url
from vigil.outbound_policy import OutboundPolicy, OutboundRefused, outbound_client
from vigil.outputs import OutputEnvelope
from vigil.sinks import build_sink
from vigil.specs import PipelineSpec, SinkSpec
from vigil.store.repo import Store

ANSWER_BYTES = 4096
_SINK_ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSpec)


def sample_records(project_id: str, pipeline: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "kind": "log",
            "time": now,
            "severity": "ERROR",
            "body": "vigil test batch: payment declined (upstream timeout)",
            "resource": {"service.name": "vigil-test"},
            "attributes": {"vigil.test": True, "vigil.pipeline": pipeline, "vigil.project": project_id},
        }
    ]


def _answer(ok: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": ok, "message": message, **extra}


def trial_router(store: Store, policy: OutboundPolicy) -> APIRouter:
    router = APIRouter()
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)

    @router.post("/projects/{project_id}/pipelines/{name}/test", tags=["pipelines"])
    async def test_pipeline(project_id: str, name: str) -> dict[str, Any]:
        """Send one sample batch to the pipeline's agent and show what it answered."""
        spec = PipelineSpec.model_validate((await store.get_pipeline(project_id, name)).spec)
        records = sample_records(project_id, name)
        if spec.agent.endpoint.startswith("builtin:"):
            return _answer(
                True,
                f"{spec.agent.endpoint} runs inside Vigil: send logs to see its outputs in the live view",
                records=records,
            )
        request_id = f"test-{uuid.uuid4().hex[:16]}"
        headers = {
            **{k: v.get_secret_value() for k, v in spec.agent.headers.items()},
            "Content-Type": "application/json",
            "X-Project-ID": project_id,
            "X-Request-ID": request_id,
            "X-Vigil-Attempt": "1",
            "X-Vigil-Test": "1",
            "User-Agent": f"vigil/{__version__}",
        }
        started = time.perf_counter()
        async with outbound_client(policy, limits) as client:
            try:
                response = await client.post(
                    spec.agent.endpoint,
                    content=orjson.dumps(records),
                    headers=headers,
                    timeout=min(spec.agent.timeout_s, 30.0),
                )
            except OutboundRefused as exc:
                return _answer(False, f"refused by the outbound policy: {exc}")
            except httpx.HTTPError as exc:
                return _answer(False, f"{mask_url(spec.agent.endpoint)}: {type(exc).__name__}: {exc}")
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return _answer(
            response.is_success,
            f"the agent answered HTTP {response.status_code}",
            status=response.status_code,
            body=response.content[:ANSWER_BYTES].decode("utf-8", "replace"),
            elapsed_ms=elapsed_ms,
            request_id=request_id,
            records=records,
        )

    @router.post("/projects/{project_id}/sinks/{sink_id}/test", tags=["sinks"])
    async def test_sink(project_id: str, sink_id: str) -> dict[str, Any]:
        """Send one sample output through the sink and show whether it was taken."""
        spec = _SINK_ADAPTER.validate_python((await store.get_sink(project_id, sink_id)).spec)
        output = OutputEnvelope(
            id=str(uuid.uuid4()),
            project_id=project_id,
            request_id=f"test-{uuid.uuid4().hex[:16]}",
            pipeline=None,
            received_at=datetime.now(UTC),
            payload={"summary": "vigil test output: the sink is reachable", "test": True},
        )
        started = time.perf_counter()
        async with outbound_client(policy, limits) as client:
            try:
                await build_sink(spec, client).deliver(output)
            except DeliveryError as exc:
                return _answer(False, str(exc))
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return _answer(True, "the sink took the test output", elapsed_ms=elapsed_ms)

    return router
