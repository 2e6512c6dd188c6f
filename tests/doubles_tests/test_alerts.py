"""The alert webhook factories: the fields Alertmanager and Grafana document, computed as they compute them."""

from __future__ import annotations

from tests.doubles.alerts import (
    ZERO_TIME,
    alertmanager_alert,
    alertmanager_notification,
    fingerprint,
    grafana_alert,
    grafana_notification,
    resolved,
)

SHOP = {"alertname": "CheckoutErrors", "service": "shop", "severity": "page"}

ALERTMANAGER_FIELDS = {
    "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
    "commonLabels", "commonAnnotations", "externalURL", "alerts",
}  # fmt: skip
ALERTMANAGER_ALERT_FIELDS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}
GRAFANA_FIELDS = ALERTMANAGER_FIELDS | {"orgId", "title", "state", "message"}
GRAFANA_ALERT_FIELDS = ALERTMANAGER_ALERT_FIELDS | {
    "silenceURL",
    "dashboardURL",
    "panelURL",
    "values",
    "valueString",
}


def test_fingerprint_is_prometheus_label_set_hash() -> None:
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"b": "2", "a": "1"}) == fingerprint({"a": "1", "b": "2"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})


def test_alertmanager_v4_group_and_its_resolution() -> None:
    a = alertmanager_alert(SHOP | {"pod": "shop-1"}, {"summary": "5xx 12%", "runbook": "restart"})
    b = alertmanager_alert(SHOP | {"pod": "shop-2"}, {"summary": "5xx 14%", "runbook": "restart"})
    body = alertmanager_notification(a, b, group_by=("alertname", "service"))
    assert set(body) == ALERTMANAGER_FIELDS
    assert set(body["alerts"][0]) == ALERTMANAGER_ALERT_FIELDS
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "CheckoutErrors", "service": "shop"}
    assert body["commonLabels"] == SHOP
    assert body["commonAnnotations"] == {"runbook": "restart"}
    assert body["groupKey"] == '{}:{alertname="CheckoutErrors",service="shop"}'
    assert a["endsAt"] == ZERO_TIME
    assert a["fingerprint"] != b["fingerprint"]

    half = alertmanager_notification(resolved(a), b)
    assert half["status"] == "firing"
    done = alertmanager_notification(resolved(a), resolved(b))
    assert done["status"] == "resolved"
    assert done["alerts"][0]["endsAt"] != ZERO_TIME
    assert done["alerts"][0]["fingerprint"] == a["fingerprint"]


def test_grafana_unified_alerting_body() -> None:
    alert = grafana_alert(
        SHOP, {"summary": "5xx 12%"}, values={"B": 12.5, "C": 1}, dashboard_uid="shop", panel_id=4
    )
    body = grafana_notification(alert)
    assert set(body) == GRAFANA_FIELDS
    assert set(body["alerts"][0]) == GRAFANA_ALERT_FIELDS
    assert (body["version"], body["orgId"], body["state"]) == ("1", 1, "alerting")
    assert body["title"] == "[FIRING:1] CheckoutErrors (shop page)"
    assert "**Firing**" in body["message"]
    assert " - service = shop" in body["message"]
    assert alert["panelURL"].endswith("/d/shop?viewPanel=4")
    assert "[ var='B' labels={} value=12.5 ]" in alert["valueString"]
    cleared = grafana_notification(resolved(alert))
    assert (cleared["status"], cleared["state"]) == ("resolved", "ok")
    assert cleared["title"].startswith("[RESOLVED]")
