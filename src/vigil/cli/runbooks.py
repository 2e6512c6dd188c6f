"""`vigil runbooks list|show|apply|delete` and `vigil audit`: what workflows may do, and who changed
or did what."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiError,
    ApiUrlOption,
    CliFailure,
    JsonOption,
    ProjectArg,
    TokenOption,
    console,
    errors,
    fail,
    print_json,
    project_call,
    say,
    short_time,
    table,
)

runbooks_app = typer.Typer(
    help="Runbooks: the only steps a workflow may take, what they match, how success is verified.",
    no_args_is_help=True,
)

RunbookArg = Annotated[str, typer.Argument(metavar="RUNBOOK", help="Runbook id.")]
_MATCH_LISTS = ("services", "error_types", "template_ids", "signal_kinds")


def describe_match(match: dict[str, Any]) -> str:
    parts = []
    for name, wanted in (match.get("alert_labels") or {}).items():
        parts.append(f"{name}=~{wanted['regex']}" if isinstance(wanted, dict) else f"{name}={wanted}")
    for field in _MATCH_LISTS:
        if match.get(field):
            parts.append(f"{field} {','.join(match[field])}")
    return "; ".join(parts) or "anything"


@runbooks_app.command("list")
def list_runbooks(
    project: ProjectArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """The project's runbooks."""
    found, rows = project_call(api_url, token, project, "GET", "/runbooks")
    if as_json:
        print_json(rows)
        return
    if not rows:
        say(f"No runbooks yet: [bold]vigil runbooks apply {escape(found['name'])} RUNBOOK.yaml[/]")
        return
    cells = [
        [
            row["id"],
            row["spec"].get("title") or "",
            row["spec"]["tier"],
            describe_match(row["spec"].get("match") or {}),
            ", ".join(step["action"] for step in row["spec"]["steps"]),
            row["origin"],
            short_time(row["updated_at"]),
        ]
        for row in rows
    ]
    columns = ["ID", "TITLE", "TIER", "MATCHES", "STEPS", "ORIGIN", "UPDATED"]
    console.print(table(columns, cells, title=f"Runbooks of {found['name']}"))


def without_empty(value: Any) -> Any:
    """The runbook without the fields left at an empty default (null, "", [], {}), which the API
    fills in again; an action's `params` are kept as they are."""
    if isinstance(value, list):
        return [without_empty(item) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {k: v if k == "params" else without_empty(v) for k, v in value.items()}
    return {k: v for k, v in kept.items() if v not in (None, "", [], {}) or k == "params"}


@runbooks_app.command("show")
def show_runbook(
    project: ProjectArg,
    runbook_id: RunbookArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Print a runbook as YAML, as `runbooks apply` takes it back (empty defaults left out)."""
    _, row = project_call(api_url, token, project, "GET", f"/runbooks/{runbook_id}")
    if as_json:
        print_json(row)
        return
    document = {"id": row["id"], **without_empty(row["spec"])}
    typer.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)


def runbook_id_of(path: Path, document: Any) -> str:
    """The document's `id:`, else the file's name without its extension (as the API takes it)."""
    from vigil.workflow.runbooks import RUNBOOK_ID  # not at start: it loads every action's client

    given = document.get("id") if isinstance(document, dict) else None
    ident = given or path.stem
    if not isinstance(ident, str) or not re.fullmatch(RUNBOOK_ID, ident):
        source = "its id" if given else "the file name (no id: in the document)"
        raise ValueError(
            f"{source} gives runbook id {ident!r}: use lowercase letters, digits, ., - and _ "
            "(at most 100, starting with a letter or digit)"
        )
    return ident


def apply_file(api: ApiClient, project_id: str, path: Path) -> str:
    """Create or replace the runbook in `path`; what was done, or ValueError naming the problem."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read it: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc
    ident = runbook_id_of(path, document)
    try:
        row = api.send(
            "PUT", f"/projects/{project_id}/runbooks/{ident}", content=text, content_type="application/yaml"
        )
    except ApiError as exc:
        # The API names the body as "body"; here that is the file.
        raise ValueError(f"{exc.message.removeprefix('body: ')} ({exc.code}, HTTP {exc.status})") from exc
    change = "created" if row["created_at"] == row["updated_at"] else "replaced"
    return f"{change} runbook {ident}"


@runbooks_app.command("apply")
def apply_runbooks(
    project: ProjectArg,
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE.yaml...", help="One runbook per file; id: or the file name.")
    ],
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Create or replace runbooks from YAML files; every file is tried, and any that fails is named."""
    failed = 0
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        for path in files:
            try:
                done = apply_file(api, found["id"], path)
            except ValueError as exc:
                failed += 1
                errors.print(f"[red]error:[/] {escape(f'{path}: {exc}')}", soft_wrap=True, highlight=False)
                continue
            except CliFailure as exc:  # the API is gone: the next files would fail the same way
                fail(str(exc))
            say(f"[green]{escape(done)}[/] from {escape(str(path))}")
    if failed:
        fail(f"{failed} of {len(files)} runbook files were not applied")


@runbooks_app.command("delete")
def delete_runbook(
    project: ProjectArg,
    runbook_id: RunbookArg,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Delete a runbook (workflows that started with it keep their copy)."""
    found, _ = project_call(api_url, token, project, "DELETE", f"/runbooks/{runbook_id}")
    say(f"[green]deleted runbook[/] {escape(runbook_id)} of [bold]{escape(found['name'])}[/]")


def audit(
    project: ProjectArg,
    kind: Annotated[
        str | None, typer.Option(help="A kind or its prefix: config., approval, workflow.execute ...")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="What was changed or acted on (an id).")] = None,
    actor: Annotated[str | None, typer.Option(help="Who: admin, workflow, or an approver's name.")] = None,
    before_id: Annotated[int | None, typer.Option("--before-id", min=1, help="Page back.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """The project's audit log, newest first: configuration changes, approvals, workflow steps."""
    params = {"kind": kind, "subject": subject, "actor": actor, "before_id": before_id, "limit": limit}
    found, rows = project_call(api_url, token, project, "GET", "/audit", params=params)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("No audit entries match.")
        return
    cells = [
        [
            str(row["id"]),
            short_time(row["at"]),
            row["actor"],
            row["kind"],
            row["subject"],
            json.dumps(row.get("detail") or {}, ensure_ascii=False, separators=(", ", ": ")),
        ]
        for row in rows
    ]
    console.print(
        table(["ID", "AT", "ACTOR", "KIND", "SUBJECT", "DETAIL"], cells, title=f"Audit of {found['name']}")
    )
    if len(rows) == limit:
        say(f"older: --before-id {rows[-1]['id']}")
