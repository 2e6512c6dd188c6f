"""What lies behind incidents and analyses: the evidence archived for a signal (`vigil evidence`)
and what the LLM engine spent (`vigil llm-usage`)."""

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

_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _cut(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _tokens(value: int | None) -> str:
    return "no limit" if value is None else f"{value:,}"


def evidence(
    project: ProjectArg,
    fingerprint: Annotated[
        str,
        typer.Argument(
            metavar="FINGERPRINT", help="A signal's fingerprint, as `vigil incidents show` lists it."
        ),
    ],
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="Newest windows first, at most this many.")
    ] = 20,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """The evidence the detector archived for one signal: each window's statistics, baseline,
    trace ids and sample requests."""
    found, documents = project_call(
        api_url, token, project, "GET", f"/evidence/{fingerprint}", params={"limit": limit}
    )
    if as_json:
        print_json(documents)
        return
    if not documents:
        say(f"No evidence archived for {escape(fingerprint)} in {escape(found['name'])}.")
        return
    rows: list[list[str | Text]] = []
    for document in documents:
        signal: dict[str, Any] = document.get("signal") or {}
        proof: dict[str, Any] = document.get("evidence") or {}
        stats: dict[str, Any] = proof.get("stats") or {}
        severity = str(signal.get("severity", ""))
        requests = f"{stats.get('errors', 0)}/{stats.get('count', 0)}" if stats else ""
        rows.append(
            [
                short_time(signal.get("window_start")),
                str(signal.get("kind", "")),
                Text(severity, style=_SEVERITY_STYLE.get(severity, "")),
                f"{signal.get('value', 0):.4g} ≥ {signal.get('threshold', 0):.4g}",
                requests,
                ", ".join(proof.get("trace_ids") or []),
                str(len(proof.get("samples") or [])),
            ]
        )
    title = (documents[0].get("signal") or {}).get("title") or fingerprint
    say(f"[bold]{escape(str(title))}[/]")
    columns = ["WINDOW", "KIND", "SEVERITY", "VALUE ≥ THRESHOLD", "ERRORS/REQUESTS", "TRACE IDS", "SAMPLES"]
    console.print(table(columns, rows, title=f"Evidence of {fingerprint}"))


def llm_usage(
    project: ProjectArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Tokens the LLM engine spent for the project today and per incident, and what is left."""
    found, usage = project_call(api_url, token, project, "GET", "/llm-usage")
    if as_json:
        print_json(usage)
        return
    if not usage.get("configured"):
        say(
            "No LLM is configured (VIGIL_LLM__PROVIDER, VIGIL_LLM__MODEL): built-in agents use the rules "
            "engine and spend no tokens."
        )
        return
    say(f"[bold]LLM usage of {escape(found['name'])}[/] on {escape(str(usage['day']))}")
    say(
        f"today {usage['tokens_today']:,} of {_tokens(usage['tokens_per_day'])} tokens, "
        f"{_tokens(usage['remaining_today'])} left; resets {short_time(usage['resets_at'])} UTC"
    )
    incidents: dict[str, dict[str, Any]] = usage.get("incidents") or {}
    if not incidents:
        say("No incident has used the LLM today.")
        return
    rows = [
        [key, f"{spent['tokens_today']:,}", f"{spent['tokens_total']:,}", _tokens(spent["remaining"])]
        for key, spent in sorted(incidents.items(), key=lambda item: -item[1]["tokens_today"])
    ]
    limit = _tokens(usage["tokens_per_incident"])
    console.print(
        table(["INCIDENT", "TODAY", "TOTAL", "LEFT"], rows, title=f"Per incident (limit {limit} tokens each)")
    )
