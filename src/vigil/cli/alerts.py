"""`vigil alerts fire|resolve`: post an alert to a project's intake as Alertmanager does (webhook
version 4), to try runbooks, tiers and the workflow before Alertmanager or Grafana is pointed at
Vigil."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiUrlOption,
    JsonOption,
    ProjectArg,
    TokenOption,
    fail,
    print_json,
    say,
)

alerts_app = typer.Typer(
    help="Send alerts as Alertmanager does, to try runbooks and the workflow.", no_args_is_help=True
)

LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="name=value (repeatable): service, severity, tier, runbook_id, ..."),
]


def _labels(alertname: str, pairs: list[str]) -> dict[str, str]:
    labels = {"alertname": alertname}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r} is not name=value", param_hint="--label")
        labels[name] = value
    return labels


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _post(api_url: str, token: str | None, project: str, alert: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    notification = {"version": "4", "status": alert["status"], "receiver": "vigil-cli", "alerts": [alert]}
    with ApiClient.connect(api_url, token) as api:
        return api.in_project(project, "POST", "/alerts/alertmanager", body=notification)


def _report(found: dict[str, Any], answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(answer)
        return
    for incident in answer.get("incidents") or []:
        say(
            f"incident [bold]{escape(incident['id'])}[/] {escape(incident['change'])} "
            f"({escape(incident['status'])}, {incident['notifications']} notifications) in {escape(found['name'])}"
        )


@alerts_app.command("fire")
def fire(
    project: ProjectArg,
    alertname: Annotated[str, typer.Argument(metavar="ALERTNAME", help="The alert's `alertname` label.")],
    label: LabelOption = None,
    summary: Annotated[str | None, typer.Option("--summary", help="The `summary` annotation.")] = None,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Fire an alert: it opens an incident (or counts again on the open one), which enters the
    workflow as the project's policy and the alert's `tier` label say."""
    alert = {
        "status": "firing",
        "labels": _labels(alertname, label or []),
        "annotations": {"summary": summary} if summary else {},
        "startsAt": _now(),
    }
    found, answer = _post(api_url, token, project, alert)
    _report(found, answer, as_json)
    if not as_json:
        for incident in answer.get("incidents") or []:
            say(f"resolve it with: vigil alerts resolve {escape(project)} {escape(incident['id'])}")


@alerts_app.command("resolve")
def resolve(
    project: ProjectArg,
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT", help="An alert's incident.")],
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Resolve the alert behind an incident, as Alertmanager does when it clears."""
    with ApiClient.connect(api_url, token) as api:
        _, incident = api.in_project(project, "GET", f"/incidents/{incident_id}")
    fired = incident.get("alert")
    if incident.get("kind") != "alert" or not isinstance(fired, dict):
        fail(f"{incident_id} was opened by the detector, not by an alert: there is no alert to resolve")
    alert = {
        "status": "resolved",
        "labels": fired["labels"],
        "annotations": fired.get("annotations") or {},
        "startsAt": fired["starts_at"],
        "endsAt": _now(),
        "fingerprint": fired["fingerprint"],
    }
    found, answer = _post(api_url, token, project, alert)
    _report(found, answer, as_json)
