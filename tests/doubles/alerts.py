"""Alert webhook bodies as Alertmanager (webhook version 4) and Grafana unified alerting send them.

    firing = alertmanager_alert({"alertname": "CheckoutErrors", "service": "shop"}, {"summary": "5xx 12%"})
    body = alertmanager_notification(firing)                        # POST it to the intake
    body = alertmanager_notification(resolved(firing))              # the same alert, resolved
    body = grafana_notification(grafana_alert({"alertname": "HighLatency"}, values={"B": 2.4, "C": 1}))

Notifications compute what the senders compute: `status` (firing while any alert fires),
`groupLabels` (the `group_by` labels of the first alert), `commonLabels` and `commonAnnotations`
(the pairs every alert shares), `groupKey`, and for Grafana `title`, `state` and `message` in the
shape of its default templates. Alerts carry a `fingerprint` computed as Prometheus hashes a label
set (FNV-1a over sorted names and values), so the same labels always give the same fingerprint.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "ZERO_TIME",
    "alertmanager_alert",
    "alertmanager_notification",
    "fingerprint",
    "grafana_alert",
    "grafana_notification",
    "resolved",
]

ZERO_TIME = "0001-01-01T00:00:00Z"
"""`endsAt` of an alert that has not resolved."""
ALERTMANAGER_URL = "http://alertmanager.example.test:9093"
GRAFANA_URL = "http://grafana.example.test:3000/"
PROMETHEUS_URL = "http://prometheus.example.test:9090"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus's label-set fingerprint, as Alertmanager reports it (16 hex digits)."""
    value = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name.encode(), b"\xff", str(labels[name]).encode(), b"\xff"):
            for byte in part:
                value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def _time(moment: datetime | str | None, default: datetime | None = None) -> str:
    if isinstance(moment, str):
        return moment
    chosen = moment or default
    return ZERO_TIME if chosen is None else chosen.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _common(items: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not items:
        return {}
    first = items[0]
    return {k: v for k, v in first.items() if all(other.get(k) == v for other in items[1:])}


def _matchers(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def resolved(alert: Mapping[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """The same alert (either kind), resolved at `at` (now by default)."""
    return {**alert, "status": "resolved", "endsAt": _time(at or datetime.now(UTC))}


def alertmanager_alert(
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    *,
    status: str = "firing",
    starts_at: datetime | str | None = None,
    ends_at: datetime | str | None = None,
    generator_url: str | None = None,
) -> dict[str, Any]:
    """One entry of `alerts[]`; a firing alert's `endsAt` is the zero time, as Alertmanager sends it."""
    if "alertname" not in labels:
        raise ValueError("an alert needs an alertname label")
    started = starts_at or datetime.now(UTC) - timedelta(minutes=5)
    expr = urllib.parse.quote(f'ALERTS{{alertname="{labels["alertname"]}"}}')
    return {
        "status": status,
        "labels": dict(labels),
        "annotations": dict(annotations or {}),
        "startsAt": _time(started),
        "endsAt": _time(ends_at, datetime.now(UTC) if status == "resolved" else None),
        "generatorURL": generator_url or f"{PROMETHEUS_URL}/graph?g0.expr={expr}&g0.tab=1",
        "fingerprint": fingerprint(labels),
    }


def alertmanager_notification(
    *alerts: Mapping[str, Any],
    receiver: str = "vigil",
    group_by: Sequence[str] = ("alertname",),
    external_url: str = ALERTMANAGER_URL,
    truncated_alerts: int = 0,
) -> dict[str, Any]:
    """A webhook body (version "4") for one alert group."""
    if not alerts:
        raise ValueError("a notification carries at least one alert")
    group_labels = {k: alerts[0]["labels"][k] for k in group_by if k in alerts[0]["labels"]}
    return {
        "version": "4",
        "groupKey": f"{{}}:{_matchers(group_labels)}",
        "truncatedAlerts": truncated_alerts,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": [dict(a) for a in alerts],
    }


def grafana_alert(
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    *,
    status: str = "firing",
    values: Mapping[str, float] | None = None,
    starts_at: datetime | str | None = None,
    ends_at: datetime | str | None = None,
    rule_uid: str = "ddv7k1afz29",
    dashboard_uid: str | None = None,
    panel_id: int | None = None,
    external_url: str = GRAFANA_URL,
) -> dict[str, Any]:
    """One entry of Grafana's `alerts[]`, with its silence, dashboard and panel links."""
    if "alertname" not in labels:
        raise ValueError("an alert needs an alertname label")
    chosen = dict(values or {"A": 1.0})
    matchers = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    silence = (
        f"{external_url}alerting/silence/new?alertmanager=grafana&matchers={urllib.parse.quote(matchers)}"
    )
    dashboard = f"{external_url}d/{dashboard_uid}" if dashboard_uid else ""
    panel = f"{dashboard}?viewPanel={panel_id}" if dashboard_uid and panel_id is not None else ""
    value_string = ", ".join(f"[ var='{ref}' labels={{}} value={value} ]" for ref, value in chosen.items())
    return {
        "status": status,
        "labels": dict(labels),
        "annotations": dict(annotations or {}),
        "startsAt": _time(starts_at or datetime.now(UTC) - timedelta(minutes=5)),
        "endsAt": _time(ends_at, datetime.now(UTC) if status == "resolved" else None),
        "generatorURL": f"{external_url}alerting/grafana/{rule_uid}/view",
        "fingerprint": fingerprint(labels),
        "silenceURL": silence,
        "dashboardURL": dashboard,
        "panelURL": panel,
        "values": chosen,
        "valueString": value_string,
    }


def _grafana_message(alerts: Sequence[Mapping[str, Any]]) -> str:
    sections = []
    for kind in ("firing", "resolved"):
        chosen = [a for a in alerts if a["status"] == kind]
        if not chosen:
            continue
        lines = [f"**{kind.capitalize()}**", ""]
        for alert in chosen:
            lines.append(f"Value: {alert['valueString']}")
            lines.append("Labels:")
            lines += [f" - {k} = {v}" for k, v in alert["labels"].items()]
            if alert["annotations"]:
                lines.append("Annotations:")
                lines += [f" - {k} = {v}" for k, v in alert["annotations"].items()]
            lines += [f"Source: {alert['generatorURL']}", f"Silence: {alert['silenceURL']}", ""]
        sections.append("\n".join(lines))
    return "\n".join(sections)


def grafana_notification(
    *alerts: Mapping[str, Any],
    receiver: str = "vigil",
    org_id: int = 1,
    group_by: Sequence[str] = ("alertname",),
    external_url: str = GRAFANA_URL,
    truncated_alerts: int = 0,
) -> dict[str, Any]:
    """A Grafana webhook contact point body (version "1") for one alert group."""
    if not alerts:
        raise ValueError("a notification carries at least one alert")
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    group_labels = {k: alerts[0]["labels"][k] for k in group_by if k in alerts[0]["labels"]}
    common = _common([a["labels"] for a in alerts])
    firing = sum(1 for a in alerts if a["status"] == "firing")
    extra = [v for k, v in common.items() if k not in group_labels]
    title = (
        f"[{status.upper()}{f':{firing}' if status == 'firing' else ''}] {' '.join(group_labels.values())} "
    )
    title += f"({' '.join(extra)})" if extra else ""
    return {
        "receiver": receiver,
        "status": status,
        "orgId": org_id,
        "alerts": [dict(a) for a in alerts],
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "version": "1",
        "groupKey": f"{{}}/{{}}:{_matchers(group_labels)}",
        "truncatedAlerts": truncated_alerts,
        "title": title,
        "state": "alerting" if status == "firing" else "ok",
        "message": _grafana_message(alerts),
    }
