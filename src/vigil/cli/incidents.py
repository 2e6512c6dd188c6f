"""`vigil incidents list|show|replays`: the detector's and the alerts' incidents of a project."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiUrlOption,
    JsonOption,
    ProjectArg,
    TokenOption,
    console,
    print_json,
    project_call,
    say,
    short_time,
    table,
)

incidents_app = typer.Typer(
    help="Incidents: what the detector found and what alerts reported.", no_args_is_help=True
)

_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


@incidents_app.command("list")
def list_incidents(
    project: ProjectArg,
    status: Annotated[str | None, typer.Option(help="open or resolved")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Incidents, most recently updated first."""
    params: dict[str, Any] = {"limit": limit}
    if status is not None:
        params["status"] = status
    found, rows = project_call(api_url, token, project, "GET", "/incidents", params=params)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say(
            "No incidents yet. The detector opens them from spans after its first windows; alerts open them at once."
        )
        return
    console.print(
        table(
            ["ID", "STATUS", "SEVERITY", "SERVICES", "TITLE", "OPENED", "UPDATED"],
            [
                [
                    row["id"],
                    row["status"],
                    Text(str(row["severity"]), style=_SEVERITY_STYLE.get(str(row["severity"]), "")),
                    ", ".join(row.get("services") or []),
                    row["title"],
                    short_time(row.get("opened_at")),
                    short_time(row.get("updated_at")),
                ]
                for row in rows
            ],
            title=f"Incidents of {found['name']}",
        )
    )


@incidents_app.command("show")
def show_incident(
    project: ProjectArg,
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT")],
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """One incident: its signals or alert, and its timeline."""
    _, body = project_call(api_url, token, project, "GET", f"/incidents/{incident_id}")
    if as_json:
        print_json(body)
        return
    say(f"[bold]{escape(body['title'])}[/]  ({escape(body['id'])})")
    services = ", ".join(body.get("services") or []) or "-"
    say(escape(f"status {body['status']}, severity {body['severity']}, services {services}"))
    if body.get("kind") == "alert":
        say(
            escape(f"alert from {body['source']}, tier {body['tier']}, {body['notifications']} notifications")
        )
        for problem in body.get("label_problems") or []:
            say(f"  [yellow]{escape(problem)}[/]")
    for signal in body.get("signals") or []:
        where = f"{signal.get('service')} {signal.get('endpoint') or ''}".rstrip()
        say(escape(f"  signal {signal.get('kind')} on {where}  (evidence: {signal.get('fingerprint')})"))
    for entry in body.get("timeline") or []:
        say(escape(f"  {short_time(entry.get('at'))}  {entry.get('event')}  {entry.get('detail') or ''}"))


@incidents_app.command("replays")
def list_replays(
    project: ProjectArg,
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """The incident's replays (`vigil replay`), newest first: the latest is its confirmation."""
    _, rows = project_call(
        api_url, token, project, "GET", f"/incidents/{incident_id}/replays", params={"limit": limit}
    )
    if as_json:
        print_json(rows)
        return
    if not rows:
        say(
            f"{escape(incident_id)} was never replayed: `vigil replay {escape(incident_id)} --target URL` does it."
        )
        return
    console.print(
        table(
            ["AT", "TARGET", "CONFIRMED", "FAILED/SENT", "ID"],
            [
                [
                    short_time(row["at"]),
                    row["target"],
                    Text("yes", style="red") if row["reproduced"] else Text("no", style="green"),
                    f"{row['failed']}/{row['attempted']}",
                    row["id"],
                ]
                for row in rows
            ],
            title=f"Replays of {incident_id}",
        )
    )
