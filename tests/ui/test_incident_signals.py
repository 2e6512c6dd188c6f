"""An incident the detector opened: its signal's chart of each archived window's value against the
threshold and the baseline, its window statistics and evidence; and a runbook refused with the
API's reason, then saved."""

from __future__ import annotations

import time

import pytest
from playwright.async_api import Page, expect

from tests.conftest import VigilHandle
from tests.ui.conftest import sign_in
from vigil.detect.baselines import BaselineSnapshot, MetricBaseline
from vigil.detect.incidents import Incident, TimelineEntry
from vigil.detect.signals import Evidence, Severity, Signal, SignalKind
from vigil.detect.stats import WindowStats

pytestmark = pytest.mark.slow


def error_spike(project_id: str, window_start: float, rate: float) -> Signal:
    stats = WindowStats(
        project=project_id,
        service="checkout",
        endpoint="POST /pay",
        kind="server",
        window_start=window_start,
        window_end=window_start + 60,
        count=200,
        errors=int(200 * rate),
        p50_ms=40.0,
        p95_ms=180.0,
    )
    baseline = BaselineSnapshot(
        project=project_id,
        service="checkout",
        endpoint="POST /pay",
        windows=30,
        last_seen=window_start,
        metrics={"error_rate": MetricBaseline(value=0.01, spread=0.005, log=False, windows=30, ready=True)},
    )
    return Signal(
        kind=SignalKind.ERROR_RATE_SPIKE,
        severity=Severity.CRITICAL,
        project=project_id,
        service="checkout",
        endpoint="POST /pay",
        window_start=window_start,
        window_end=window_start + 60,
        fingerprint="0123456789abcdef",
        title="Error rate spike on checkout POST /pay",
        value=rate,
        threshold=0.05,
        evidence=Evidence(stats=stats, baseline=baseline, trace_ids=["4bf92f3577b34da6a3ce929d0e0e4736"]),
    )


async def test_a_detected_incident_charts_its_signal_against_the_baseline(
    vigil: VigilHandle, page: Page
) -> None:
    project_id, _ = await vigil.project_with_key()
    assert vigil.runtime.store is not None and vigil.runtime.evidence is not None
    now = time.time()
    windows = [error_spike(project_id, now - 240 + 60 * i, rate) for i, rate in enumerate((0.08, 0.12, 0.2))]
    for signal in windows:
        await vigil.runtime.evidence.put(signal)
    incident = Incident(
        id="inc-checkout-errors",
        project=project_id,
        title="Error rate spike on checkout POST /pay",
        severity=Severity.CRITICAL,
        services=["checkout"],
        opened_at=now - 240,
        updated_at=now - 60,
        last_seen_at=now - 60,
        first_window_start=now - 240,
        last_window_end=now - 60,
        lead_fingerprint="0123456789abcdef",
        signals=[windows[-1]],
        occurrences={"0123456789abcdef": 3},
        timeline=[
            TimelineEntry(
                at=now - 240, event="opened", fingerprint="0123456789abcdef", detail="error rate 8%"
            )
        ],
    )
    await vigil.runtime.store.save_incidents([incident])

    await sign_in(page, vigil)
    await page.goto(f"{vigil.api_url}/#/incident/inc-checkout-errors")
    signal = page.locator("#signal-0123456789abcdef")
    await expect(signal).to_contain_text(
        "error_rate_spike in checkout POST /pay: value 0.2 against threshold 0.05"
    )
    chart = signal.get_by_role("img")
    await expect(chart).to_have_attribute(
        "aria-label",
        "error_rate_spike: the window's value against the threshold and the baseline: latest window 0.2,"
        " threshold 0.05, baseline error_rate 0.01",
    )
    assert await chart.locator("path").count() == 3  # window, threshold, baseline: one line each
    await expect(signal.get_by_role("cell", name="200", exact=True)).to_be_visible()  # the window's requests
    await expect(signal).to_contain_text("4bf92f3577b34da6a3ce929d0e0e4736")
    await expect(page.locator(".timeline")).to_contain_text("opened error rate 8%")


async def test_a_runbook_is_refused_with_the_reason_then_saved(vigil: VigilHandle, page: Page) -> None:
    project_id, _ = await vigil.project_with_key()
    await sign_in(page, vigil)
    await page.get_by_role("link", name="Runbooks").click()
    await page.get_by_label("Id", exact=True).fill("restart-checkout")
    spec = page.get_by_label("Runbook (JSON or YAML)")
    await spec.fill('{"title": "Restart", "tier": "sometimes", "match": {}, "steps": []}')
    await page.get_by_role("button", name="Save runbook").click()
    await expect(page.locator("#runbook-spec-error")).to_contain_text("tier")
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/runbooks")).json() == []
    await spec.fill(
        "title: Restart checkout\ntier: supervised\nmatch:\n  alert_labels: {alertname: CheckoutErrors}\n"
        "steps:\n  - action: kubernetes.rollout_restart\n    params: {namespace: shop, deployment: checkout}\n"
        "verify: {after_s: 60, timeout_s: 600}\n"
    )
    await page.get_by_role("button", name="Save runbook").click()
    await expect(page.get_by_role("heading", name="Runbook restart-checkout")).to_be_visible()
    [saved] = (await vigil.api.get(f"/api/v1/projects/{project_id}/runbooks")).json()
    assert saved["id"] == "restart-checkout" and saved["spec"]["tier"] == "supervised"
