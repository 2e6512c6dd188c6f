"""`vigil sink add|list|delete`: where agents' outputs are delivered."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape

from vigil.cli.admin import project_label
from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiUrlOption,
    JsonOption,
    ProjectArg,
    TokenOption,
    console,
    print_json,
    say,
    short_time,
    table,
)
from vigil.masking import mask_url

sink_app = typer.Typer(help="Sinks: where agents' outputs are delivered.")


class SinkType(StrEnum):
    webhook = "webhook"
    slack = "slack"


@sink_app.command("add")
def sink_add(
    project: ProjectArg,
    kind: Annotated[SinkType, typer.Argument(metavar="TYPE", help="webhook or slack.")],
    url: Annotated[str | None, typer.Option("--url", help="Webhook: URL outputs are POSTed to.")] = None,
    secret: Annotated[
        str | None, typer.Option("--secret", help="Webhook: HMAC-SHA256 signing secret.")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="Slack: incoming-webhook URL.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for the sink.")] = None,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Add a webhook or Slack sink."""
    body: dict[str, Any] = {"type": kind.value}
    if kind is SinkType.webhook:
        if url is None or webhook_url is not None:
            raise typer.BadParameter("a webhook sink takes --url [--secret]", param_hint="--url")
        body["url"] = url
        if secret is not None:
            body["secret"] = secret
    else:
        if webhook_url is None or url is not None or secret is not None:
            raise typer.BadParameter("a slack sink takes --webhook-url", param_hint="--webhook-url")
        body["webhook_url"] = webhook_url
    if name is not None:
        body["name"] = name
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        sink = api.post(f"/projects/{found['id']}/sinks", body)
    if as_json:
        print_json(sink)
        return
    say(f"[green]added {kind.value} sink[/] {sink['id']} to project {project_label(found)}")


def _sink_target(sink: dict[str, Any]) -> str:
    spec = sink["spec"]
    return mask_url(str(spec["url"])) if "url" in spec else "Slack incoming webhook (secret)"


@sink_app.command("list")
def sink_list(
    project: ProjectArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List a project's sinks (secrets masked)."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        sinks: list[dict[str, Any]] = api.get(f"/projects/{found['id']}/sinks")
    if as_json:
        print_json(sinks)
        return
    rows = [
        [s["id"], s["type"], s["name"] or "", _sink_target(s), short_time(s["created_at"])] for s in sinks
    ]
    console.print(table(["ID", "TYPE", "NAME", "TARGET", "CREATED"], rows, title=f"Sinks of {found['name']}"))


@sink_app.command("delete")
def sink_delete(
    project: ProjectArg, sink_id: str, api_url: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None
) -> None:
    """Delete a sink."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        api.delete(f"/projects/{found['id']}/sinks/{sink_id}")
    say(f"[green]deleted sink[/] {escape(sink_id)} of project {project_label(found)}")
