"""The LLM engine learns from feedback too: a rated case of the project goes into the model's prompt
as an example, and changes what a model that reads its examples answers; another project's
prompts never show it. Through a real runtime, its pipelines and a local OpenAI-speaking server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import VigilHandle, make_settings, running
from tests.doubles.alerts import alertmanager_alert
from tests.doubles.kubernetes_server import KubernetesServer
from tests.doubles.openai_server import OpenAIServer
from tests.e2e.test_workflow import fire, k8s, workflow_of
from tests.e2e.test_workflow_learning import project
from tests.logs_factory import PROTOBUF, export_bytes

__all__ = ["k8s"]

KEY = "sk-test-learning-4c2e8a"
EXAMPLES = "Past cases of this project"
POOL = "database connection pool exhausted: timed out waiting for a free connection after 30000ms"
FIX = "scaling the pool out fixed it; a restart did not"


def follows_examples(prompt: str) -> str:
    """A model that does what worked before when its prompt shows it, and restarts otherwise."""
    remediation = ["Restart checkout"]
    if EXAMPLES in prompt:
        examples = orjson.loads(prompt.rsplit("\n", 1)[-1])
        worked = [e for e in examples if e["verdict"] == "worked"]
        remediation = [f"Run runbook {worked[0]['runbook']}", *worked[0]["comments"]]
    answer = {
        "summary": "Checkout cannot get database connections.",
        "severity": "critical",
        "error_type": "ConnectionPoolExhausted",
        "root_cause": "The database connection pool is exhausted.",
        "remediation": remediation,
        "notify": True,
        "confidence": 0.8,
        "citations": [],
    }
    return orjson.dumps(answer).decode()


@pytest.fixture
async def model() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer(api_key=KEY) as server:
        server.responder = follows_examples
        yield server


@pytest.fixture
async def vigil_with_llm(tmp_path: Path, model: OpenAIServer) -> AsyncIterator[VigilHandle]:
    llm = {"provider": "openai", "model": "gpt-test", "base_url": model.api_base, "api_key": KEY}
    async with running(make_settings(tmp_path / "vigil", llm=llm)) as handle:
        yield handle


async def with_llm_pipeline(vigil: VigilHandle, k8s: KubernetesServer, name: str) -> tuple[str, str]:
    project_id, key = await project(vigil, k8s, name)
    spec = {
        "filter": {"min_severity": "ERROR"},
        "batch": {"max_records": 10, "max_wait_ms": 200},
        "agent": {"endpoint": "builtin:error-summary", "engine": "llm"},
    }
    answer = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=spec)
    assert answer.status_code == 200, answer.text
    return project_id, key


async def pool_alert(vigil: VigilHandle, project_id: str, key: str) -> dict[str, Any]:
    alert = alertmanager_alert(
        {"alertname": "CheckoutErrors", "service": "checkout", "tier": "supervised"},
        {"summary": "checkout: database connection pool exhausted"},
    )
    return await workflow_of(vigil, project_id, await fire(vigil, project_id, key, alert), "waiting_approval")


async def analysed(
    vigil: VigilHandle, model: OpenAIServer, project_id: str, key: str
) -> tuple[dict[str, Any], str]:
    """The LLM engine's answer to the pool errors of checkout, and the prompt it sent."""
    url = f"/api/v1/projects/{project_id}/outputs"
    seen = {o["id"] for o in (await vigil.api.get(url)).json()}
    asked = len(model.requests)
    sent = await vigil.receiver.post(
        "/v1/logs", content=export_bytes("checkout", [POOL] * 3), headers={**PROTOBUF, "X-API-Key": key}
    )
    assert sent.status_code == 200, sent.text
    deadline = asyncio.get_running_loop().time() + 30
    while not (new := [o for o in (await vigil.api.get(url)).json() if o["id"] not in seen]):
        assert asyncio.get_running_loop().time() < deadline, "no analysis"
        await asyncio.sleep(0.2)
    [request] = model.requests[asked:]
    return new[0]["payload"], model.prompt(request)


async def test_feedback_reaches_the_prompt_and_changes_the_answer_in_its_project_only(
    vigil_with_llm: VigilHandle, model: OpenAIServer, k8s: KubernetesServer
) -> None:
    vigil = vigil_with_llm
    project_id, key = await with_llm_pipeline(vigil, k8s, "payments")
    other_id, other_key = await with_llm_pipeline(vigil, k8s, "search")
    waiting = await pool_alert(vigil, project_id, key)
    await pool_alert(vigil, other_id, other_key)

    before, prompt = await analysed(vigil, model, project_id, key)
    assert before["engine"] == "llm" and before["remediation"] == ["Restart checkout"]
    assert EXAMPLES not in prompt  # a case nobody judged teaches nothing

    rated = await vigil.api.post(
        f"/api/v1/projects/{project_id}/feedback",
        json={"target_id": waiting["plan_id"], "rating": 5, "helpful": True, "comment": FIX},
    )
    assert rated.status_code == 201, rated.text

    after, prompt = await analysed(vigil, model, project_id, key)
    assert EXAMPLES in prompt and FIX in prompt
    [example] = orjson.loads(prompt.rsplit("\n", 1)[-1])
    assert (
        example["verdict"] == "worked"
        and example["runbook"] == "restart-checkout"
        and example["reward"] == 1.0
    )
    assert after["engine"] == "llm" and after["remediation"] == ["Run runbook restart-checkout", FIX]

    elsewhere, prompt = await analysed(vigil, model, other_id, other_key)
    assert EXAMPLES not in prompt and FIX not in prompt
    assert elsewhere["remediation"] == ["Restart checkout"]
