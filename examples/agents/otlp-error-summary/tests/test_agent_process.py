"""The agent end to end: a real uvicorn server for the agent, a real local server for Vigil."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from error_summary.app import create_app, idempotency_key
from error_summary.settings import Settings
from local_servers import Answer, JsonServer, Received, accept_output, free_port, serve_app
from sample_records import SAMPLE_BATCH

from tests.doubles.openai_server import OpenAIServer

AGENT_DIR = Path(__file__).parents[1]
HEADERS = {"X-Project-ID": "0b6c3c1e-5f0e-4c55-9d43-3c1a1c1b2a10", "X-Request-ID": "req-123"}
MODEL_ANSWER = {
    "summary": "payment-service cannot get database connections.",
    "severity": "warning",
    "error_type": "SlowQueries",
    "root_cause": "Slow queries hold every pooled connection.",
    "remediation": ["Find the slow queries."],
    "notify": False,
    "confidence": 0.6,
    "citations": [],
}


@pytest.fixture
def vigil() -> Iterator[JsonServer]:
    with JsonServer(accept_output) as server:
        yield server


def test_process_sends_the_summary_to_vigil(vigil: JsonServer) -> None:
    app = create_app(Settings(vigil_api_key="proj-key", vigil_endpoint=vigil.url))
    with serve_app(app) as agent_url:
        response = httpx.post(f"{agent_url}/process", json=SAMPLE_BATCH, headers=HEADERS)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    [sent] = vigil.received
    assert sent.path == "/internal/agent-output"
    assert sent.headers["x-api-key"] == "proj-key"
    assert sent.headers["idempotency-key"] == "otlp-error-summary:req-123"
    assert sent.body["request_id"] == "req-123"
    assert sent.body["payload"]["agent"] == "otlp-error-summary"
    assert sent.body["payload"]["error_type"] == "ConnectionPoolExhausted"
    assert sent.body["payload"]["records"] == 2


def test_a_rejected_output_is_a_502_so_vigil_retries_the_batch() -> None:
    def unauthorized(_: Received) -> Answer:
        return Answer(401, {"error": "unauthorized", "message": "invalid API key", "details": {}})

    with JsonServer(unauthorized) as vigil:
        app = create_app(Settings(vigil_api_key="wrong", vigil_endpoint=vigil.url))
        with serve_app(app) as agent_url:
            response = httpx.post(f"{agent_url}/process", json=SAMPLE_BATCH, headers=HEADERS)

    assert response.status_code == 502
    assert response.json()["error"] == "output_not_delivered"
    assert "unauthorized" in response.json()["message"]
    assert len(vigil.received) == 1


def test_a_batch_without_request_id_is_refused(vigil: JsonServer) -> None:
    app = create_app(Settings(vigil_api_key="k", vigil_endpoint=vigil.url))
    with serve_app(app) as agent_url:
        response = httpx.post(f"{agent_url}/process", json=SAMPLE_BATCH, headers={"X-Project-ID": "p"})
        health = httpx.get(f"{agent_url}/healthz")

    assert response.status_code == 400
    assert response.json()["error"] == "missing_request_id"
    assert vigil.received == []
    assert health.json() == {"status": "ok"}


def test_a_body_that_is_not_an_array_is_refused(vigil: JsonServer) -> None:
    app = create_app(Settings(vigil_api_key="k", vigil_endpoint=vigil.url))
    with serve_app(app) as agent_url:
        response = httpx.post(f"{agent_url}/process", json={"records": SAMPLE_BATCH}, headers=HEADERS)

    assert response.status_code == 422
    assert vigil.received == []


def test_uvicorn_main_app_reads_the_glassflow_variable_names(vigil: JsonServer) -> None:
    env = {"GLASSFLOW_API_KEY": "example-key", "GLASSFLOW_ENDPOINT": vigil.url}

    with run_main(env) as base:
        response = httpx.post(f"{base}/process", json=SAMPLE_BATCH, headers=HEADERS)

    assert response.status_code == 200
    assert vigil.received[0].headers["x-api-key"] == "example-key"
    assert vigil.received[0].body["request_id"] == "req-123"
    assert vigil.received[0].body["payload"]["engine"] == "rules"


def test_uvicorn_main_app_reads_the_openai_variables(vigil: JsonServer) -> None:
    with OpenAIServer(api_key="sk-env-test") as model:
        model.reply_json(MODEL_ANSWER)
        env = {
            "VIGIL_API_KEY": "k",
            "VIGIL_ENDPOINT": vigil.url,
            "OPENAI_API_KEY": "sk-env-test",
            "OPENAI_MODEL": "llama3.1",
            "OPENAI_BASE_URL": model.api_base,
            "AI_TIMEOUT_SECONDS": "5",
        }
        with run_main(env) as base:
            response = httpx.post(f"{base}/process", json=SAMPLE_BATCH, headers=HEADERS)

        [request] = model.requests
    assert response.status_code == 200
    assert request.json()["model"] == "llama3.1"
    assert vigil.received[0].body["payload"]["engine"] == "llm"
    assert vigil.received[0].body["payload"]["error_type"] == "SlowQueries"


@contextmanager
def run_main(variables: dict[str, str]) -> Iterator[str]:
    """`uvicorn main:app` in its own process, from the agent's folder, with only `variables` of
    the agent's own set; yields its base URL."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIGIL_", "GLASSFLOW_", "OPENAI_", "AI_", "LOG_LEVEL"))
    }
    env |= {"LOG_LEVEL": "WARNING", **variables}
    command = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)]
    agent = subprocess.Popen(command, cwd=AGENT_DIR, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_healthy(base, agent)
        yield base
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the agent exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the agent did not become healthy")


def test_idempotency_keys_fit_vigils_limit() -> None:
    long_id = "r" * 200

    assert idempotency_key("req-1") == "otlp-error-summary:req-1"
    assert len(idempotency_key(long_id)) <= 200
    assert idempotency_key(long_id) != idempotency_key(long_id[:-1] + "s")
