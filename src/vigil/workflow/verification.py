"""The verification step: after an action, did the problem clear? The alert resolved, the detector's
signal gone, and the runbook's PromQL expression holding, when Prometheus is configured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from vigil.workflow.steps import load, record_step

if TYPE_CHECKING:
    from vigil.workflow.engine import Services


async def verify_cleared(services: Services, workflow_id: str) -> dict[str, Any]:
    loaded = await load(services, workflow_id)
    verify = loaded.runbook().spec.verify
    checks: dict[str, bool] = {}
    if loaded.incident.get("kind") == "alert":
        if verify.alert_resolved:
            checks["alert resolved"] = loaded.incident.get("status") == "resolved"
    elif verify.signal_gone:
        # by the time the signals describe (their windows), not when the detector got to them: a
        # detector running behind may report a window from before the action after it
        acted = float(loaded.row.body.get("acted_at") or 0)
        last = float(loaded.incident.get("last_window_end") or loaded.incident.get("last_seen_at") or 0)
        checks["signal gone"] = loaded.incident.get("status") == "resolved" or last <= acted
    if verify.promql:
        checks["promql"] = await _promql_holds(services, loaded.policy.prometheus_url, verify.promql)
    cleared = all(checks.values())
    summary = (
        ", ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in checks.items()) or "nothing to check"
    )
    await record_step(services, loaded, "verify", "cleared" if cleared else "not_cleared", {"checks": checks})
    return {"cleared": cleared, "summary": summary}


async def _promql_holds(services: Services, prometheus_url: str | None, expr: str) -> bool:
    """True when the expression returns a result (as an alerting rule's condition)."""
    if not prometheus_url:
        return False
    try:
        answer = await services.http.get(
            prometheus_url.rstrip("/") + "/api/v1/query", params={"query": expr}, timeout=10
        )
        data = answer.json()
    except (httpx.HTTPError, ValueError):
        return False
    if answer.status_code != 200 or data.get("status") != "success":
        return False
    result = data.get("data", {}).get("result")
    return bool(result) if isinstance(result, list) else result is not None
