"""Agent and sink URLs: their credentials never shown (logs, errors, dead letters, API answers)
while deliveries still use them, and destinations the outbound policy refuses never reached."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, VigilHandle, make_settings, running
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes
from tests.process import VigilProcess
from vigil.masking import ERROR_TEXT_MAX
from vigil.outbound import ERROR_BODY_BYTES
from vigil.settings import OutboundSettings

USER, PASSWORD, TOKEN = "vigil-agent", "pa55w0rd-Qx81", "s3cr3t-tok-9931"
ECHOED = "password=hunter2-echo Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
SECRETS = (PASSWORD, TOKEN, "hunter2-echo", "eyJhbGciOiJIUzI1NiJ9")


def secret_url(agent: AgentServer) -> str:
    return f"http://{USER}:{PASSWORD}@127.0.0.1:{agent.port}/process?token={TOKEN}&team=payments"


def masked_url(agent: AgentServer) -> str:
    return f"http://***:***@127.0.0.1:{agent.port}/process?token=***&team=payments"


def pipeline(endpoint: str) -> dict[str, Any]:
    return {"batch": {"max_records": 10, "max_wait_ms": 50}, "agent": {"endpoint": endpoint}}


async def dead_letters(vigil: VigilHandle, project_id: str, count: int = 1) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        letters: list[dict[str, Any]] = (
            await vigil.api.get(f"/api/v1/projects/{project_id}/dead-letters")
        ).json()
        if len(letters) >= count:
            return letters
        assert asyncio.get_running_loop().time() < deadline, letters
        await asyncio.sleep(0.1)


async def send(vigil: VigilHandle, key: str, bodies: list[str]) -> None:
    response = await vigil.receiver.post(
        "/v1/logs", content=export_bytes("checkout", bodies), headers={**PROTOBUF, "X-API-Key": key}
    )
    assert response.status_code == 200, response.text


async def test_agent_url_credentials_are_masked_everywhere_but_used_to_deliver(
    vigil: VigilHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    project_id, key = await vigil.project_with_key()
    async with AgentServer() as agent:
        # The agent refuses with a 4xx (final) whose long body echoes secrets back.
        agent.fail_next(1, status=400, body=f"bad batch: {ECHOED} " + "x" * 5000)
        put = await vigil.api.put(
            f"/api/v1/projects/{project_id}/pipelines/errors", json=pipeline(secret_url(agent))
        )
        assert put.status_code == 200, put.text
        assert put.json()["spec"]["agent"]["endpoint"] == masked_url(agent)
        got = (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines/errors")).json()
        assert got["spec"]["agent"]["endpoint"] == masked_url(agent)
        listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines")).json()
        assert listed[0]["spec"]["agent"]["endpoint"] == masked_url(agent)

        # Saved again as read back (masked), the pipeline keeps its stored credentials.
        again = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=got["spec"])
        assert again.status_code == 200, again.text

        await send(vigil, key, ["payment failed"])
        [request] = await agent.wait_for(1)
        # Delivery used the real credentials: userinfo as Basic auth, the token in the query.
        assert request.header("authorization") == "Basic " + base64.b64encode(
            f"{USER}:{PASSWORD}".encode()
        ).decode("ascii")
        assert f"token={TOKEN}" in request.query

        [letter] = await dead_letters(vigil, project_id)
        batches = (await vigil.api.get(f"/api/v1/projects/{project_id}/batches")).json()
        shown = [letter["error"], batches[0]["last_error"]]
        for error in shown:
            assert masked_url(agent) in error and "HTTP 400" in error
            assert not any(secret in error for secret in SECRETS), error
            assert len(error) <= ERROR_TEXT_MAX
            assert 0 < error.count("x") <= ERROR_BODY_BYTES  # the answer's body is cut

    assert any(r.getMessage() == "delivery failed" for r in caplog.records)
    # where the agent's URL is logged (the failed delivery), it is masked
    assert any(masked_url(agent) in f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__}"
        assert not any(secret in text for secret in SECRETS), text


@pytest.mark.slow
def test_vigil_up_logs_no_url_credentials(tmp_path: Path) -> None:
    """The same through `vigil up` as a process: nothing in what it writes to stderr."""
    vigil = VigilProcess(tmp_path / "vigil", VIGIL_LOG_LEVEL="INFO")
    with AgentServer() as agent:
        agent.fail_next(1, status=400, body=f"bad batch: {ECHOED}")
        vigil.start()
        try:
            api = httpx.Client(base_url=vigil.api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            project = api.post("/api/v1/projects", json={"name": "p"}).json()
            key = api.post(f"/api/v1/projects/{project['id']}/api-keys", json={}).json()["key"]
            assert (
                api.put(
                    f"/api/v1/projects/{project['id']}/pipelines/errors", json=pipeline(secret_url(agent))
                ).status_code
                == 200
            )
            sent = httpx.post(
                f"{vigil.receiver_url}/v1/logs",
                content=export_bytes("checkout", ["payment failed"]),
                headers={**PROTOBUF, "X-API-Key": key},
            )
            assert sent.status_code == 200
            agent.wait_for_sync(1, timeout_s=20)
            for _ in range(200):
                if api.get(f"/api/v1/projects/{project['id']}/dead-letters").json():
                    break
                time.sleep(0.1)
            api.close()
        finally:
            vigil.stop()
    log = vigil.log.read_text()
    assert "delivery failed" in log
    assert masked_url(agent) in log
    assert not any(secret in log for secret in SECRETS), log[-3000:]


async def test_refused_destinations_get_a_422_when_saved(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    assert vigil.runtime.api_http is not None and vigil.runtime.receiver_http is not None
    api_port, receiver_port = vigil.runtime.api_http.port, vigil.runtime.receiver_http.port
    refused = {
        "http://169.254.169.254/latest/meta-data/iam/": "link-local or cloud metadata address",
        "http://metadata.google.internal/computeMetadata/v1/": "cloud metadata service",
        f"http://127.0.0.1:{api_port}/api/v1/projects": "Vigil's own listening ports",
        f"http://localhost:{receiver_port}/v1/logs": "Vigil's own listening ports",
    }
    for endpoint, reason in refused.items():
        response = await vigil.api.put(
            f"/api/v1/projects/{project_id}/pipelines/errors", json=pipeline(endpoint)
        )
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "validation_error"
        assert body["message"].startswith("agent.endpoint: refused by the outbound policy: ")
        assert reason in body["message"]
        assert body["details"]["errors"][0]["loc"] == ["body", "agent", "endpoint"]
    sinks = [
        ({"type": "webhook", "url": f"http://127.0.0.1:{api_port}/x"}, "url"),
        ({"type": "slack", "webhook_url": "http://169.254.169.254/services/T0/B0/x"}, "webhook_url"),
    ]
    for sink, field in sinks:
        response = await vigil.api.post(f"/api/v1/projects/{project_id}/sinks", json=sink)
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith(f"{field}: refused by the outbound policy: ")
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines")).json() == []
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/sinks")).json() == []


async def test_a_name_resolving_to_a_refused_address_is_refused_at_delivery(tmp_path: Path) -> None:
    """The host name is only resolved when delivering: what it resolves to is checked then."""
    host = socket.gethostname()
    outbound = OutboundSettings(only_allowed=True, allow=["192.0.2.0/24"])  # a network no host has
    async with running(make_settings(tmp_path / "vigil", outbound=outbound)) as vigil:
        project_id, key = await vigil.project_with_key()
        async with AgentServer() as agent:
            endpoint = f"http://{host}:{agent.port}/process"
            put = await vigil.api.put(
                f"/api/v1/projects/{project_id}/pipelines/errors", json=pipeline(endpoint)
            )
            assert put.status_code == 200, put.text  # a name: its addresses are not known yet
            await send(vigil, key, ["payment failed"])
            [letter] = await dead_letters(vigil, project_id)
            assert "refused by the outbound policy" in letter["error"]
            assert "not on the outbound allow list" in letter["error"]
            assert letter["attempts"] == 1  # final at once: retrying cannot help

            # Sinks go through the same check: an output for that batch is refused on its way out.
            sink = {"type": "webhook", "url": f"http://{host}:{agent.port}/hook"}
            added = await vigil.api.post(f"/api/v1/projects/{project_id}/sinks", json=sink)
            assert added.status_code == 201, added.text
            output = {"request_id": letter["ref"], "payload": {"summary": "x"}}
            posted = await vigil.receiver.post(
                "/internal/agent-output", json=output, headers={"X-API-Key": key}
            )
            assert posted.status_code == 200, posted.text
            _, sink_letter = await dead_letters(vigil, project_id, count=2)
            assert sink_letter["kind"] == "sink" and sink_letter["target"] == added.json()["id"]
            assert "not on the outbound allow list" in sink_letter["error"]
            assert agent.requests == []


async def test_a_name_resolving_to_vigils_own_port_is_refused_at_delivery(vigil: VigilHandle) -> None:
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    if not all(address.startswith("127.") or address == "::1" for address in addresses):
        pytest.skip(f"{host} resolves to {addresses}, not to loopback, where this runtime listens")
    assert vigil.runtime.receiver_http is not None
    project_id, key = await vigil.project_with_key()
    endpoint = f"http://{host}:{vigil.runtime.receiver_http.port}/v1/logs"
    put = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=pipeline(endpoint))
    assert put.status_code == 200, put.text
    await send(vigil, key, ["payment failed"])
    [letter] = await dead_letters(vigil, project_id)
    assert "refused by the outbound policy" in letter["error"]
    assert "Vigil's own listening ports" in letter["error"]


async def test_webhook_url_credentials_are_masked_in_answers(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    url = f"https://hooks:{PASSWORD}@hooks.example.com/vigil?sig={TOKEN}&team=pay"
    masked = "https://***:***@hooks.example.com/vigil?sig=***&team=pay"
    created = await vigil.api.post(
        f"/api/v1/projects/{project_id}/sinks", json={"type": "webhook", "url": url, "secret": "s"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["url"] == masked
    got = (await vigil.api.get(f"/api/v1/projects/{project_id}/sinks/{created.json()['id']}")).json()
    listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/sinks")).json()
    assert got["spec"]["url"] == listed[0]["spec"]["url"] == masked
    assert vigil.runtime.store is not None
    [row] = await vigil.runtime.store.list_sinks(project_id)
    assert row.spec["url"] == url  # stored as given: deliveries use it
