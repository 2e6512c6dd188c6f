"""`vigil approvals list|approve|reject`: the workflows waiting for a person's go-ahead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
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
    console,
    print_json,
    project_call,
    say,
    short_time,
    table,
)
from vigil.cli.workflows import styled

approvals_app = typer.Typer(
    help="Approvals: supervised workflows wait here for a person to approve or reject their plan.",
    no_args_is_help=True,
)


class ApprovalStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    all = "all"


def _left(expires_at: str, now: datetime) -> str:
    seconds = int((datetime.fromisoformat(expires_at) - now).total_seconds())
    if seconds <= 0:
        return "due now"
    hours, rest = divmod(seconds, 3600)
    return f"in {hours}h {rest // 60}m" if hours else f"in {rest // 60}m {rest % 60}s"


def expiry(row: dict[str, Any], now: datetime) -> str:
    when = short_time(row["expires_at"])
    return f"{when} ({_left(row['expires_at'], now)})" if row["status"] == "pending" else when


def answer(row: dict[str, Any]) -> str:
    if not row.get("decided_by"):
        return ""
    return str(row["decided_by"]) + (f": {row['reason']}" if row.get("reason") else "")


@approvals_app.command("list")
def list_approvals(
    project: Annotated[
        str | None, typer.Argument(metavar="[PROJECT]", help="Project id or name (default: every project).")
    ] = None,
    status: Annotated[ApprovalStatus, typer.Option(help="Which approvals to show.")] = ApprovalStatus.pending,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Approvals, the most recently requested first, with when each expires."""
    params = {"status": None if status is ApprovalStatus.all else status.value, "limit": limit}
    with ApiClient.connect(api_url, token) as api:
        if project is None:
            rows: list[dict[str, Any]] = api.get("/approvals", **params)
            names = {p["id"]: p["name"] for p in api.get("/projects")}
        else:
            found, rows = api.in_project(project, "GET", "/approvals", params=params)
            names = {found["id"]: found["name"]}
    if as_json:
        print_json(rows)
        return
    if not rows:
        say(f"No {'' if status is ApprovalStatus.all else status.value + ' '}approvals.")
        return
    now = datetime.now(UTC)
    columns = ["ID", "PROJECT", "STATUS", "RUNBOOK", "PLAN", "INCIDENT", "REQUESTED", "EXPIRES", "ANSWER"]
    cells = [
        [
            row["id"],
            names.get(row["project_id"], row["project_id"]),
            styled(row["status"]),
            row["runbook_id"],
            "; ".join((row.get("plan") or {}).get("steps") or []),
            row["incident_id"],
            short_time(row["requested_at"]),
            expiry(row, now),
            answer(row),
        ]
        for row in rows
    ]
    console.print(table(columns, cells))


def _decision(verb: str, summary: str) -> Callable[..., None]:
    def decide(
        project: ProjectArg,
        approval_id: Annotated[str, typer.Argument(metavar="APPROVAL", help="Approval id.")],
        by: Annotated[str, typer.Option("--by", help="Who answers: a name or an email (audited).")],
        reason: Annotated[str | None, typer.Option("--reason", help="Why (audited).")] = None,
        as_json: JsonOption = False,
        api_url: ApiUrlOption = DEFAULT_API_URL,
        token: TokenOption = None,
    ) -> None:
        body = {"by": by, "reason": reason}
        found, row = project_call(
            api_url, token, project, "POST", f"/approvals/{approval_id}/{verb}", body=body
        )
        if as_json:
            print_json(row)
            return
        say(
            f"[green]{row['status']}[/] {escape(row['id'])} (runbook {escape(row['runbook_id'])}); "
            f"follow it: [bold]vigil workflows watch {escape(found['name'])} {escape(row['workflow_id'])}[/]"
        )

    decide.__doc__ = summary
    return decide


approvals_app.command("approve")(
    _decision("approve", "Let the workflow carry out its plan. An approval is answered once.")
)
approvals_app.command("reject")(
    _decision("reject", "Stop the workflow: it escalates to people. An approval is answered once.")
)
