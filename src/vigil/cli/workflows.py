"""`vigil workflows list|show|watch` and `vigil policy show|set`: remediation workflows, their steps
as they happen, and the project's workflow policy."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.markup import escape
from rich.text import Text

from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
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
    read_document,
    say,
    short_time,
    table,
)

workflows_app = typer.Typer(
    help="Remediation workflows: analysis, plan, approval, action, verification.", no_args_is_help=True
)
policy_app = typer.Typer(
    help="A project's workflow policy: what enters workflows, approvals, what actions may touch.",
    no_args_is_help=True,
)

WorkflowArg = Annotated[str, typer.Argument(metavar="WORKFLOW", help="Workflow id.")]
MASKED = "**********"
RESUME_ATTEMPTS = 5
_STEP_FIELDS = frozenset({"step", "status", "at", "index", "incident", "approval_id"})
_STATUS_STYLE = {
    "resolved": "green",
    "done": "green",
    "cleared": "green",
    "approved": "green",
    "pending": "yellow",
    "waiting_approval": "yellow",
    "retrying": "yellow",
    "dry_run": "cyan",
    "recorded": "cyan",
    "analysed": "cyan",
    "escalated": "bold red",
    "rolled_back": "bold red",
    "failed": "bold red",
    "refused": "red",
    "rejected": "red",
    "expired": "red",
    "not_cleared": "red",
}


def styled(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def step_summary(details: dict[str, Any]) -> str:
    """What a step's record says, in a line: its steps carry different fields (see the workflow's steps)."""
    parts: list[str] = []
    for key in ("summary", "description", "why"):
        if details.get(key):
            parts.append(str(details[key]))
    if details.get("steps"):
        parts.append("; ".join(str(s) for s in details["steps"]))
    if details.get("refused"):
        parts.append(f"refused: {details['refused']}")
    if isinstance(details.get("checks"), dict):
        checks = details["checks"].items()
        parts.append(
            ", ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in checks) or "nothing to check"
        )
    if details.get("by"):
        parts.append(f"by {details['by']}" + (f": {details['reason']}" if details.get("reason") else ""))
    if details.get("expires_at"):
        parts.append(f"expires {short_time(details['expires_at'])}")
    if details.get("confidence") is not None:
        parts.append(f"confidence {float(details['confidence']):.2f}")
    if details.get("tier"):
        parts.append(f"tier {details['tier']}")
    if details.get("repeated"):
        parts.append("(repeated: not acted again)")
    if details.get("error"):
        parts.append(f"{details.get('what') or 'error'}: {details['error']}")
    if not parts:  # a step this CLI does not know yet: its fields as they are
        parts = [f"{k}={v}" for k, v in details.items() if k not in _STEP_FIELDS and v not in (None, "")]
    return "  ".join(parts)


def step_row(step: dict[str, Any], details: dict[str, Any]) -> list[str | Text]:
    return [str(step["step"]), styled(str(step["status"])), short_time(step.get("at")), step_summary(details)]


def _outcome(workflow: dict[str, Any]) -> str:
    return str(workflow.get("outcome") or "")


@workflows_app.command("list")
def list_workflows(
    project: ProjectArg,
    status: Annotated[
        str | None, typer.Option(help="running, waiting_approval, resolved, escalated, rolled_back, ...")
    ] = None,
    incident: Annotated[str | None, typer.Option(help="Only this incident's workflows.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Workflows, most recently updated first."""
    params = {"status": status, "incident_id": incident, "limit": limit}
    found, rows = project_call(api_url, token, project, "GET", "/workflows", params=params)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("No workflows. Firing alerts start them; detected incidents when the workflow policy says so.")
        return
    columns = ["ID", "STATUS", "TIER", "RUNBOOK", "INCIDENT", "TITLE", "STARTED", "UPDATED", "OUTCOME"]
    cells = [
        [
            row["id"],
            styled(row["status"]),
            row["tier"],
            row.get("runbook_id") or "",
            row["incident_id"],
            row.get("title") or "",
            short_time(row.get("started_at")),
            short_time(row.get("updated_at")),
            _outcome(row),
        ]
        for row in rows
    ]
    console.print(table(columns, cells, title=f"Workflows of {found['name']}"))


@workflows_app.command("show")
def show_workflow(
    project: ProjectArg,
    workflow_id: WorkflowArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """One workflow: what it found, planned and did, step by step."""
    _, body = project_call(api_url, token, project, "GET", f"/workflows/{workflow_id}")
    if as_json:
        print_json(body)
        return
    say(f"[bold]{escape(body.get('title') or body['id'])}[/]  ({escape(body['id'])})")
    line = Text(f"tier {body['tier']}, incident {body['incident_id']}, status ")
    console.print(line.append_text(styled(body["status"])), soft_wrap=True, highlight=False)
    analysis = body.get("analysis") or {}
    if analysis:
        say(escape(f"analysis: {analysis.get('summary')} (confidence {analysis.get('confidence', 0):.2f})"))
    for planned in body.get("plan") or []:
        say(escape(f"  plan: {planned.get('description')}"))
    if body.get("approval_id"):
        say(escape(f"approval: {body['approval_id']}"))
    targets = [body[k] for k in ("analysis_id", "plan_id") if body.get(k)]
    if targets:
        say(escape(f"feedback: vigil feedback give {project} {' | '.join(targets)} --rating 1-5"))
    if body.get("outcome"):
        say(escape(f"outcome: {body['outcome']}"))
    steps = body.get("steps") or []
    cells = [step_row(step, step) for step in steps]
    console.print(table(["STEP", "STATUS", "TIME", "SUMMARY"], cells))


def follow(api: ApiClient, path: str) -> Iterator[dict[str, Any]]:
    """The workflow's steps from its stream, resumed after a broken connection, until `finish`."""
    last_id: str | None = None
    attempts = 0
    while True:
        try:
            for event in api.events(path, last_id):
                if event.event != "step":
                    continue
                attempts, last_id = 0, event.id
                step: dict[str, Any] = json.loads(event.data)
                yield step
                if step["step"] == "finish":
                    return
            problem = "the stream ended before the workflow finished"
        except CliFailure as exc:  # the API answered no (an unknown workflow, say): resuming won't help
            fail(str(exc))
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        attempts += 1
        if attempts > RESUME_ATTEMPTS:
            fail(f"lost the workflow's stream: {problem}")
        time.sleep(min(attempts, 5))


@workflows_app.command("watch")
def watch_workflow(
    project: ProjectArg,
    workflow_id: WorkflowArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print each step's event as a JSON line.")] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Print the workflow's steps as they happen (those done so far first); exit when it finishes."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        path = f"/projects/{found['id']}/workflows/{workflow_id}/stream"
        try:
            for step in follow(api, path):
                if as_json:
                    typer.echo(json.dumps(step, ensure_ascii=False))
                    continue
                row = step_row(step, step.get("summary") or {})
                line = Text("  ").join(cell if isinstance(cell, Text) else Text(cell) for cell in row)
                console.print(line, soft_wrap=True, highlight=False)
        except KeyboardInterrupt:
            errors.print("stopped watching; the workflow goes on", highlight=False)
            raise typer.Exit(130) from None


# --- policy ---------------------------------------------------------------------------------------


def masked_fields(document: Any, where: str = "") -> list[str]:
    """Where a document holds a secret as the API shows it (masked): saving it would store the mask."""
    if isinstance(document, dict):
        return [f for key, value in document.items() for f in masked_fields(value, f"{where}{key}.")]
    if isinstance(document, list):
        return [f for i, value in enumerate(document) for f in masked_fields(value, f"{where}{i}.")]
    return [where.rstrip(".")] if document == MASKED else []


@policy_app.command("show")
def policy_show(
    project: ProjectArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Print the workflow policy as YAML (secrets masked)."""
    _, policy = project_call(api_url, token, project, "GET", "/workflow-policy")
    if as_json:
        print_json(policy)
        return
    typer.echo(yaml.safe_dump(policy, sort_keys=False, allow_unicode=True), nl=False)


@policy_app.command("set")
def policy_set(
    project: ProjectArg,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The whole policy, as YAML or JSON.")],
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Replace the workflow policy (fields left out take their defaults)."""
    document = read_document(file)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        fail(f"{file}: a workflow policy is a mapping (detected, alerts, actions, ...)")
    if masked := masked_fields(document):
        fail(f"{file}: {masked[0]} is masked ({MASKED}): put the real secret in before saving")
    found, _ = project_call(api_url, token, project, "PUT", "/workflow-policy", body=document)
    say(f"[green]saved the workflow policy[/] of [bold]{escape(found['name'])}[/] ({found['id']})")
