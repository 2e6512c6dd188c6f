"""`vigil alerts fire|resolve` against a real runtime: an alert as Alertmanager posts it opens an
incident, firing again counts on it, and resolving it resolves that incident."""

from __future__ import annotations

from tests.cli.test_admin import cli, cli_json
from tests.conftest import VigilHandle


async def test_an_alert_fired_and_resolved_from_the_cli(vigil: VigilHandle) -> None:
    await vigil.project_with_key("shop")
    fired = await cli(
        vigil, "alerts", "fire", "shop", "DbPoolExhausted", "--label", "service=payment-service",
        "-l", "tier=human_only", "--summary", "pool at 100%",
    )  # fmt: skip
    assert fired.exit_code == 0, fired.output
    [incident] = await cli_json(vigil, "incidents", "list", "shop")
    assert f"incident {incident['id']} opened (open, 1 notifications) in shop" in fired.stdout
    assert f"vigil alerts resolve shop {incident['id']}" in fired.stdout
    assert incident["title"] == "DbPoolExhausted: pool at 100%"
    assert incident["services"] == ["payment-service"]
    shown = await cli_json(vigil, "incidents", "show", "shop", incident["id"])
    assert shown["tier"] == "human_only" and shown["labels"]["alertname"] == "DbPoolExhausted"

    resolved = await cli_json(vigil, "alerts", "resolve", "shop", incident["id"])
    assert resolved["incidents"] == [
        {"id": incident["id"], "status": "resolved", "change": "resolved", "notifications": 2}
    ]
    [after] = await cli_json(vigil, "incidents", "list", "shop")
    assert after["status"] == "resolved"

    bad = await cli(vigil, "alerts", "fire", "shop", "X", "--label", "no-equals-sign")
    assert bad.exit_code == 2 and "name=value" in bad.output
    missing = await cli(vigil, "alerts", "resolve", "shop", "al-nope")
    assert missing.exit_code == 1 and "al-nope" in missing.output
