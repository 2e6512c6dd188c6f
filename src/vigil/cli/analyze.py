"""`vigil analyze FILE`: what a log file says went wrong, from the command line.

Offline by default: the file's lines are parsed and redacted as the API does with pasted logs, and
the rules engine analyses them here, without a server (runbooks from `--runbooks`, YAML files or a
folder of them). With `--server`, the lines go to the API as pasted logs (`POST
.../workflows`, text/plain) and the investigation is followed to its end; its analysis is printed
the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiUrlOption,
    CliFailure,
    TokenOption,
    console,
    fail,
    print_json,
)
from vigil.cli.workflows import follow
from vigil.errors import VigilError
from vigil.workflow import pasted
from vigil.workflow.runbooks import Runbook, parse_runbook

CITATIONS_SHOWN = 10


def analyze(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A log file, or - for standard input.")],
    runbooks: Annotated[
        list[Path] | None,
        typer.Option("--runbooks", help="Runbook YAML files or folders to recommend from (offline)."),
    ] = None,
    service: Annotated[
        str, typer.Option(help="Service of the lines that do not name one.")
    ] = pasted.DEFAULT_SERVICE,
    server: Annotated[
        bool, typer.Option("--server", help="Analyse through the API (pasted logs) instead of here.")
    ] = False,
    project: Annotated[str | None, typer.Option(help="With --server: project id or name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Analyse a log file: root cause, confidence, the runbook to run, and the evidence cited."""
    raw = sys.stdin.buffer.read() if file == "-" else _read(Path(file))
    try:
        text = pasted.decode(raw)
        if server:
            if project is None:
                fail("--server needs --project: the project whose runbooks the analysis may recommend")
            analysis = _on_server(raw, project, api_url, token)
        else:
            records = pasted.prepare(pasted.parse(text, service))
            evidence = pasted.evidence_of("local", "analyze", records)
            found = pasted.analyse(evidence, _runbooks(runbooks or []))
            analysis = found.model_dump(mode="json")
    except VigilError as exc:
        fail(f"{file}: {exc}")
    if as_json:
        print_json(analysis)
        return
    show(analysis)


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > pasted.MAX_BYTES:
            fail(f"{path}: {size:,} bytes; at most {pasted.MAX_BYTES:,} are analysed at once")
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def _runbooks(paths: list[Path]) -> list[Runbook]:
    found: list[Runbook] = []
    for path in paths:
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        for one in files:
            try:
                found.append(parse_runbook(one.read_text(), str(one), one.stem))
            except OSError as exc:
                fail(f"cannot read {one}: {exc.strerror or exc}")
    return found


def _on_server(raw: bytes, project: str, api_url: str, token: str | None) -> dict[str, Any]:
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        base = f"/projects/{found['id']}/workflows"
        try:
            started = api.send("POST", base, content=raw.decode("utf-8"), content_type="text/plain")
            workflow_id = started["workflow_id"]
            for _ in follow(api, f"{base}/{workflow_id}/stream"):
                pass
            workflow = api.send("GET", f"{base}/{workflow_id}")
        except CliFailure as exc:
            fail(str(exc))
    analysis: dict[str, Any] = workflow.get("analysis") or {}
    if not analysis:
        fail(f"workflow {workflow_id} ended {workflow.get('status')} without an analysis")
    return analysis | {"workflow_id": workflow_id}


def show(analysis: dict[str, Any]) -> None:
    known = analysis.get("known")
    cause = analysis.get("error_type") if known else "don't know"
    console.print(f"[bold]Root cause:[/] {escape(str(cause))}", highlight=False)
    console.print(escape(str(analysis.get("root_cause", ""))), highlight=False)
    console.print(f"[bold]Confidence:[/] {float(analysis.get('confidence', 0)):.2f}", highlight=False)
    runbook = analysis.get("runbook_id")
    console.print(
        f"[bold]Runbook:[/] {escape(runbook) if runbook else 'none fits'}"
        + (" (recommended, not run)" if runbook else ""),
        highlight=False,
    )
    if analysis.get("workflow_id"):
        console.print(f"[bold]Workflow:[/] {analysis['workflow_id']}", highlight=False)
    console.print(f"[bold]Summary:[/] {escape(str(analysis.get('summary', '')))}", highlight=False)
    citations = analysis.get("evidence") or []
    if citations:
        console.print("[bold]Evidence:[/]", highlight=False)
    for citation in citations[:CITATIONS_SHOWN]:
        console.print(
            f"  template {citation['template_id']} ({citation['count']} in {escape(citation['service'])}): "
            f"{escape(citation['template'][:160])}\n    {escape(citation['reason'])}",
            highlight=False,
            soft_wrap=True,
        )
    steps = analysis.get("remediation") or []
    if steps:
        console.print("[bold]Next steps:[/]", highlight=False)
    for step in steps[:4]:
        console.print(f"  - {escape(step)}", highlight=False, soft_wrap=True)
