"""The web UI end to end in headless Chromium: sign in, a project and its key, a pipeline with a
test batch, logs sent over OTLP arriving live as outputs, an incident approved and verified,
feedback, and a dead letter replayed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import orjson
import pytest
from playwright.async_api import Page, expect

from tests.conftest import VigilHandle
from tests.doubles.agent import AgentServer
from tests.doubles.alerts import resolved
from tests.doubles.kubernetes_server import KubernetesServer
from tests.otel import OtelLogs
from tests.ui.conftest import sign_in
from tests.ui.scenario import K8S_TOKEN, checkout_alert, fire, pending_approval, supervised_restart

pytestmark = pytest.mark.slow


def send_logs(vigil: VigilHandle, key: str, messages: list[str]) -> None:
    """Error logs of the checkout service, sent with the OpenTelemetry SDK over OTLP/HTTP."""
    logs = OtelLogs("checkout", api_key=key, http_url=vigil.receiver_url)
    for message in messages:
        logs.logger.error(message)
    logs.close()


@pytest.fixture
async def k8s() -> AsyncIterator[KubernetesServer]:
    async with KubernetesServer(token=K8S_TOKEN) as server:
        server.add_deployment("checkout", "shop", image="shop:1.0", replicas=3)
        yield server


async def test_sign_in_project_key_pipeline_and_outputs_arrive_live(vigil: VigilHandle, page: Page) -> None:
    await sign_in(page, vigil)
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    await page.get_by_role("link", name="Projects").click()
    await page.get_by_label("New project's name").fill("shop")
    await page.get_by_role("button", name="Create project").click()
    await expect(page.get_by_text("shop (selected)")).to_be_visible()
    await page.get_by_label("New key's name").fill("checkout")
    await page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Key checkout")
    await expect(secret).to_be_visible()
    key = await secret.input_value()
    assert key.startswith("vgl") or len(key) > 20
    projects = (await vigil.api.get("/api/v1/projects")).json()
    [project] = [p for p in projects if p["name"] == "shop"]
    assert [
        k["name"] for k in (await vigil.api.get(f"/api/v1/projects/{project['id']}/api-keys")).json()
    ] == ["checkout"]

    with AgentServer() as agent:
        await page.get_by_role("link", name="Pipelines").click()
        await page.get_by_label("Records per batch").fill("5000")
        await page.get_by_label("Agent endpoint").fill(agent.url)
        await page.get_by_role("button", name="Save pipeline").click()
        # the API's validation, next to its field
        await expect(page.locator("#pl-records-error")).to_contain_text("less than or equal to 1000")
        await page.get_by_label("Records per batch").fill("5")
        await page.get_by_role("button", name="Save pipeline").click()
        await expect(page.get_by_role("cell", name="errors", exact=True)).to_be_visible()

        await page.get_by_role("button", name="Send a test batch to errors").click()
        await expect(page.locator(".answer")).to_contain_text("the agent answered HTTP 200")
        await expect(page.locator(".answer pre")).to_contain_text('"status":"ok"')
        [(request, records)] = agent.batches()
        assert request.header("x-vigil-test") == "1" and records[0]["body"].startswith("vigil test batch")

        agent.vigil_endpoint, agent.api_key = vigil.receiver_url, key
        await page.get_by_role("link", name="Live").click()
        await expect(page.get_by_text("Live: new events appear at the top.")).to_be_visible()
        await asyncio.to_thread(
            send_logs, vigil, key, ["payment declined for order 1", "payment declined for order 2"]
        )
        output = page.locator(".feed-item.output").first
        await expect(output).to_contain_text("error records from checkout", timeout=30_000)
        await expect(page.locator(".feed-item.record").first).to_contain_text("checkout: payment declined")
        await expect(page.locator(".feed-item.batch").first).to_be_visible()
        await page.get_by_label("Outputs").uncheck()
        await expect(page.locator(".feed-item.output")).to_have_count(0)

    await page.get_by_role("link", name="Projects").click()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Revoke checkout").click()
    await expect(page.get_by_role("cell", name=re.compile(r"^revoked "))).to_be_visible()
    [revoked] = (await vigil.api.get(f"/api/v1/projects/{project['id']}/api-keys")).json()
    assert revoked["revoked"]
    refused = await vigil.receiver.post("/v1/logs", content=b"", headers={"X-API-Key": key})
    assert refused.status_code == 401
    await page.get_by_role("button", name="Rename shop").click()
    await page.get_by_label("New name for shop").fill("shop-eu")
    await page.get_by_role("button", name="Rename", exact=True).click()
    await expect(page.get_by_text("shop-eu (selected)")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete shop-eu").click()
    await expect(page.get_by_role("combobox", name="Project")).to_have_text("No project yet")
    assert (await vigil.api.get("/api/v1/projects")).json() == []


async def test_an_incident_approved_verified_and_rated(
    vigil: VigilHandle, page: Page, k8s: KubernetesServer
) -> None:
    project_id, key = await vigil.project_with_key()
    await supervised_restart(vigil, project_id, k8s)
    firing = checkout_alert()
    incident_id = await fire(vigil, project_id, key, firing)
    approval = await pending_approval(vigil, project_id)
    await sign_in(page, vigil)

    await page.get_by_role("link", name="Approvals").click()
    await expect(page.get_by_role("link", name=incident_id)).to_be_visible()
    await expect(page.get_by_role("cell", name=re.compile(r"^in \d+ (s|min)$"))).to_be_visible()

    await page.get_by_role("link", name="Incidents").click()
    await page.get_by_role("link", name="CheckoutErrors: 5xx at 12% on checkout").click()
    await expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    await expect(page.get_by_text("restart-checkout", exact=False).first).to_be_visible()
    await page.get_by_label("Your name or email").fill("ana@example.com")
    await page.get_by_label("Reason").fill("5xx keep rising")
    await page.get_by_role("button", name="Approve").click()
    await expect(page.locator(".steps")).to_contain_text("execute", timeout=30_000)
    deadline = asyncio.get_running_loop().time() + 20
    while k8s.restarts("shop", "checkout") == 0:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    await fire(vigil, project_id, key, resolved(firing))  # the problem cleared
    await expect(page.locator(".workflow-status")).to_contain_text("resolved", timeout=30_000)
    await expect(page.locator(".steps")).to_contain_text("cleared")
    decided = (await vigil.api.get(f"/api/v1/projects/{project_id}/approvals")).json()
    assert [(a["id"], a["status"], a["decided_by"], a["reason"]) for a in decided] == [
        (approval["id"], "approved", "ana@example.com", "5xx keep rising")
    ]

    feedback_route = (
        "/api/v1/projects/{project_id}/feedback" in (await vigil.api.get("/openapi.json")).json()["paths"]
    )
    await page.get_by_label("3").check()
    await page.get_by_label("Comment").fill("right runbook, slow to act")
    async with page.expect_response(re.compile(r"/feedback$")) as answered:
        await page.get_by_role("button", name="Send feedback").click()
    response = await answered.value
    assert orjson.loads(response.request.post_data or "") == {
        "target_id": incident_id,
        "rating": 3,
        "helpful": True,
        "comment": "right runbook, slow to act",
    }
    if feedback_route:
        assert response.status == 201
        await expect(page.get_by_text("Thank you: your feedback is recorded.")).to_be_visible()
    else:  # the feedback API is not part of this build: the form says what the server answered
        assert response.status == 404
        await expect(page.locator("form[aria-label=Feedback] .form-error")).to_be_visible()


async def test_an_approval_is_rejected_from_the_approvals_page(
    vigil: VigilHandle, page: Page, k8s: KubernetesServer
) -> None:
    project_id, key = await vigil.project_with_key()
    await supervised_restart(vigil, project_id, k8s)
    incident_id = await fire(vigil, project_id, key, checkout_alert())
    approval = await pending_approval(vigil, project_id)
    await sign_in(page, vigil)
    await page.get_by_role("link", name="Approvals").click()
    await page.get_by_role("button", name=f"Answer for {incident_id}").click()
    await expect(page.get_by_label("Your name or email")).to_be_focused()
    await page.keyboard.type("bob@example.com")
    await page.get_by_label("Reason").fill("a deploy is rolling out")
    await page.get_by_role("button", name="Reject").click()
    await expect(page.get_by_role("button", name=f"Answer for {incident_id}")).to_have_count(0)
    [decided] = (await vigil.api.get(f"/api/v1/projects/{project_id}/approvals")).json()
    assert (decided["id"], decided["status"], decided["decided_by"], decided["reason"]) == (
        approval["id"],
        "rejected",
        "bob@example.com",
        "a deploy is rolling out",
    )
    assert k8s.restarts("shop", "checkout") == 0


async def test_a_dead_letter_is_replayed(vigil: VigilHandle, page: Page) -> None:
    project_id, key = await vigil.project_with_key()
    with AgentServer() as agent:
        agent.fail_next(1, status=400)  # refused for good: the batch is dead at once
        pipeline = {"agent": {"endpoint": agent.url}, "batch": {"max_records": 5, "max_wait_ms": 50}}
        put = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=pipeline)
        assert put.status_code == 200, put.text
        await asyncio.to_thread(send_logs, vigil, key, ["card declined"])
        deadline = asyncio.get_running_loop().time() + 30
        while not (await vigil.api.get(f"/api/v1/projects/{project_id}/dead-letters")).json():
            assert asyncio.get_running_loop().time() < deadline, "no dead letter"
            await asyncio.sleep(0.1)
        await sign_in(page, vigil)
        await page.get_by_role("link", name="Dead letters").click()
        await expect(page.get_by_role("cell", name=re.compile("HTTP 400"))).to_be_visible()
        await page.get_by_role("button", name=re.compile(r"^Replay batch ")).click()
        await expect(page.locator("#toast")).to_contain_text("1 put back on the bus")
        deadline = asyncio.get_running_loop().time() + 30
        while len(agent.batches()) < 1:
            assert asyncio.get_running_loop().time() < deadline, "the replayed batch did not arrive"
            await asyncio.sleep(0.1)
        [(_, records)] = agent.batches()
        assert "card declined" in orjson.dumps(records).decode()
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/dead-letters")).json() == []
