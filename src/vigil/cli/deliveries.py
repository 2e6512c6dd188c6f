"""`vigil outputs|batches|stats|dead-letters`: what pipelines sent to agents, what the agents
answered, and what ran out of retries."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

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

dead_letters_app = typer.Typer(help="Batches and deliveries that ran out of retries.", no_args_is_help=True)


class BatchStatus(StrEnum):
    pending = "pending"
    retrying = "retrying"
    delivered = "delivered"
    dead = "dead"


class DeadLetterKind(StrEnum):
    batch = "batch"
    sink = "sink"


# --- outputs, batches, dead letters, stats --------------------------------------------------------


def _summary(payload: dict[str, Any], width: int = 160) -> str:
    text = payload.get("summary")
    if not isinstance(text, str):
        text = json.dumps(payload, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def outputs(
    project: ProjectArg,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Newest first, at most this many (1-1000).")
    ] = 20,
    request_id: Annotated[
        str | None, typer.Option("--request-id", help="Only the outputs for this batch.")
    ] = None,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List agents' outputs, newest first, with the batch each answers."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        rows_in: list[dict[str, Any]] = api.get(
            f"/projects/{found['id']}/outputs", limit=limit, request_id=request_id
        )
    if as_json:
        print_json(rows_in)
        return
    rows = [
        [
            short_time(o["received_at"]),
            o["pipeline"] or "",
            str(o["batch"]["record_count"]) if o["batch"] else "",
            o["request_id"],
            _summary(o["payload"]),
        ]
        for o in rows_in
    ]
    columns = ["RECEIVED", "PIPELINE", "RECORDS", "REQUEST ID", "SUMMARY"]
    console.print(table(columns, rows, title=f"Outputs of {found['name']}"))


_STATUS_STYLE = {"delivered": "green", "pending": "cyan", "retrying": "yellow", "dead": "red"}


def _cut_body(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def show_batch(project: str, request_id: str, as_json: bool, api_url: str, token: str | None) -> None:
    """A batch with its records, as the agent received them."""
    found, batch = project_call(api_url, token, project, "GET", f"/batches/{request_id}")
    if as_json:
        print_json(batch)
        return
    say(
        f"[bold]Batch {escape(batch['request_id'])}[/] of {escape(found['name'])}, pipeline {escape(str(batch['pipeline']))}"
    )
    status = Text(batch["status"], style=_STATUS_STYLE.get(batch["status"], ""))
    line = Text.assemble(
        "status ",
        status,
        f", {batch['record_count']} records (representing {batch['represented']}), "
        f"{batch['attempts']} attempts, created {short_time(batch['created_at'])}, "
        f"updated {short_time(batch['updated_at'])}",
    )
    console.print(line, soft_wrap=True, highlight=False)
    if batch.get("last_error"):
        say(f"last error: [red]{escape(batch['last_error'])}[/]")
    records: list[dict[str, Any]] = batch.get("records") or []
    rows = [
        [
            short_time(record.get("timestamp")),
            str(record.get("severityText") or record.get("severityNumber") or ""),
            str((record.get("resourceAttributes") or {}).get("service.name", "")),
            str(record.get("count") or 1),
            _cut_body(str(record.get("body") or "")),
        ]
        for record in records
    ]
    console.print(table(["TIME", "SEVERITY", "SERVICE", "COUNT", "BODY"], rows, title="Records"))


def batches(
    project: ProjectArg,
    request_id: Annotated[
        str | None,
        typer.Argument(metavar="REQUEST_ID", help="Show this batch with its records instead of a list."),
    ] = None,
    status: Annotated[
        BatchStatus | None, typer.Option("--status", help="Only batches in this state.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Newest first, at most this many (1-1000).")
    ] = 20,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List batches sent (or being sent) to agents, newest first; or show one with its records."""
    if request_id is not None:
        show_batch(project, request_id, as_json, api_url, token)
        return
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        rows_in: list[dict[str, Any]] = api.get(
            f"/projects/{found['id']}/batches", status=status.value if status else None, limit=limit
        )
    if as_json:
        print_json(rows_in)
        return
    rows = [
        [
            short_time(b["created_at"]),
            b["pipeline"],
            Text(b["status"], style=_STATUS_STYLE.get(b["status"], "")),
            str(b["record_count"]),
            str(b["attempts"]),
            b["request_id"],
            b["last_error"] or "",
        ]
        for b in rows_in
    ]
    columns = ["CREATED", "PIPELINE", "STATUS", "RECORDS", "ATTEMPTS", "REQUEST ID", "LAST ERROR"]
    console.print(table(columns, rows, title=f"Batches of {found['name']}"))


@dead_letters_app.command("list")
def dead_letters_list(
    project: ProjectArg,
    kind: Annotated[DeadLetterKind | None, typer.Option("--kind", help="batch (agent) or sink.")] = None,
    include_replayed: Annotated[
        bool, typer.Option("--include-replayed", help="Also those replayed.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Oldest first, at most this many (1-1000).")
    ] = 100,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List dead letters: agent batches and sink deliveries that ran out of retries."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        letters: list[dict[str, Any]] = api.get(
            f"/projects/{found['id']}/dead-letters",
            kind=kind.value if kind else None,
            include_replayed=include_replayed,
            limit=limit,
        )
    if as_json:
        print_json(letters)
        return
    rows = [
        [
            d["id"],
            d["kind"],
            d["target"],
            d["error"],
            str(d["attempts"]),
            short_time(d["created_at"]),
            short_time(d["replayed_at"]),
        ]
        for d in letters
    ]
    columns = ["ID", "KIND", "TARGET", "ERROR", "ATTEMPTS", "CREATED", "REPLAYED"]
    console.print(table(columns, rows, title=f"Dead letters of {found['name']}"))


@dead_letters_app.command("replay")
def dead_letters_replay(
    project: ProjectArg,
    dead_letter_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="The dead letter to replay.")
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter not yet replayed.")
    ] = False,
    kind: Annotated[DeadLetterKind | None, typer.Option("--kind", help="With --all: only this kind.")] = None,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Send dead letters through their pipeline or sink again."""
    if (dead_letter_id is None) == (not replay_all):
        raise typer.BadParameter("give a dead letter ID or --all (not both)", param_hint="ID")
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        base = f"/projects/{found['id']}/dead-letters"
        if dead_letter_id is not None:
            result = api.post(f"{base}/{dead_letter_id}/replay")
        else:
            result = api.post(f"{base}/replay", kind=kind.value if kind else None)
    replayed: list[str] = result["replayed"]
    say(f"[green]replayed {len(replayed)} dead letter{'' if len(replayed) == 1 else 's'}[/]")
    for item in replayed:
        say(f"  {item}")


def stats(
    project: ProjectArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Counts of batches by state, outputs and dead letters."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        counts: dict[str, Any] = api.get(f"/projects/{found['id']}/stats")
    if as_json:
        print_json(counts)
        return
    rows: list[list[str | Text]] = [
        [Text(f"batches {state}", style=_STATUS_STYLE.get(state, "")), str(c["batches"]), str(c["records"])]
        for state, c in sorted(counts["batches"].items())
    ]
    rows.append(["outputs", str(counts["outputs"]), ""])
    rows.append(
        [Text("dead letters", style="red" if counts["dead_letters"] else ""), str(counts["dead_letters"]), ""]
    )
    console.print(table(["", "COUNT", "RECORDS"], rows, title=f"Project {found['name']}"))
