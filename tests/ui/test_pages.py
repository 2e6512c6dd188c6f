"""Every page at 1280 px and at 390 px wide, with data on it: drawn without errors, nothing wider
than the screen, and no serious or critical accessibility violation as axe-core finds them.
With VIGIL_UI_SCREENSHOTS=1 the main pages are saved into docs/images/ as well."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import ADMIN_TOKEN, VigilHandle
from tests.doubles.agent import AgentServer
from tests.doubles.kubernetes_server import KubernetesServer
from tests.doubles.webhook_receiver import WebhookReceiver
from tests.otel import OtelLogs
from tests.ui.scenario import K8S_TOKEN, checkout_alert, fire, pending_approval, supervised_restart

pytestmark = pytest.mark.slow

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SCREENSHOTS = {
    "overview",
    "projects",
    "pipelines",
    "live",
    "incidents",
    "incident",
    "approvals",
    "dead-letters",
}


def emit(vigil: VigilHandle, key: str) -> None:
    for service, message in (
        ("checkout", "payment declined: card issuer timeout"),
        ("billing", "invoice run failed"),
    ):
        logs = OtelLogs(service, api_key=key, http_url=vigil.receiver_url)
        for n in range(3):
            logs.logger.error("%s (%d)", message, n)
        logs.close()


async def until(check: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.1)


@pytest.fixture
async def populated(vigil: VigilHandle) -> AsyncIterator[dict[str, str]]:
    """A project with a key, two pipelines (one whose agent refuses), a sink, a runbook, an incident
    waiting for approval, outputs and a dead letter."""
    project_id, key = await vigil.project_with_key("shop")
    base = f"/api/v1/projects/{project_id}"
    async with (
        KubernetesServer(token=K8S_TOKEN) as k8s,
        AgentServer(vigil_endpoint=vigil.receiver_url, api_key=key) as agent,
        AgentServer() as refusing,
        WebhookReceiver() as hook,
    ):
        k8s.add_deployment("checkout", "shop", image="shop:1.0", replicas=3)
        refusing.fail_next(100, status=400)
        for name, endpoint, services in (
            ("errors", agent.url, ["checkout"]),
            ("billing", refusing.url, ["billing"]),
        ):
            spec = {
                "agent": {"endpoint": endpoint},
                "filter": {"services": services},
                "batch": {"max_wait_ms": 50},
            }
            assert (await vigil.api.put(f"{base}/pipelines/{name}", json=spec)).status_code == 200
        assert (
            await vigil.api.post(f"{base}/sinks", json={"type": "webhook", "name": "ops", "url": hook.url})
        ).status_code == 201
        await supervised_restart(vigil, project_id, k8s)
        incident_id = await fire(vigil, project_id, key, checkout_alert())
        await pending_approval(vigil, project_id)
        await asyncio.to_thread(emit, vigil, key)

        async def delivered() -> bool:
            outputs = (await vigil.api.get(f"{base}/outputs?batch=false")).json()
            dead = (await vigil.api.get(f"{base}/dead-letters")).json()
            return bool(outputs) and bool(dead)

        await until(delivered, "no output and dead letter")
        yield {"project_id": project_id, "incident_id": incident_id}


async def axe_violations(page: Page, axe_source: str) -> list[str]:
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=axe_source)
    result = await page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})))"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['nodes']}" for v in result if v["impact"] in ("serious", "critical")
    ]


async def test_every_page_at_both_widths_is_accessible(
    vigil: VigilHandle, populated: dict[str, str], browser: Browser, axe_source: str
) -> None:
    pages = [
        ("overview", "Overview"),
        ("projects", "Projects and API keys"),
        ("pipelines", "Pipelines and sinks"),
        ("live", "Live"),
        ("incidents", "Incidents"),
        (f"incident/{populated['incident_id']}", "CheckoutErrors: 5xx at 12% on checkout"),
        ("approvals", "Approvals"),
        ("runbooks", "Runbooks"),
        ("runbooks/restart-checkout", "Runbooks"),
        ("audit", "Audit log"),
        ("dead-letters", "Dead letters"),
    ]
    problems: list[str] = []
    for width, height in ((1280, 900), (390, 844)):
        context = await browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        page = await context.new_page()
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        try:
            await page.goto(f"{vigil.api_url}/")
            problems += [f"sign-in at {width}px: {v}" for v in await axe_violations(page, axe_source)]
            await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            for path, heading in pages:
                await page.goto(f"{vigil.api_url}/#/{path}")
                await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
                if path == "live":
                    await expect(page.locator(".feed-item.output").first).to_be_visible()
                problems += [f"{path} at {width}px: {v}" for v in await axe_violations(page, axe_source)]
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if overflow > 1:
                    problems.append(f"{path} at {width}px is {overflow}px wider than the screen")
                name = path.split("/")[0]
                if (
                    os.environ.get("VIGIL_UI_SCREENSHOTS")
                    and name in SCREENSHOTS
                    and "/" not in path.replace("incident/", "")
                ):
                    IMAGES.mkdir(parents=True, exist_ok=True)
                    suffix = "" if width == 1280 else "-narrow"
                    await page.screenshot(
                        path=str(IMAGES / f"ui-{name}{suffix}.png"), full_page=width == 1280
                    )
            assert not errors, errors
        finally:
            await context.close()
    assert not problems, "\n".join(problems)
