"""`vigil project|key|pipeline ...`: projects, their keys and pipelines, through the management API."""

from __future__ import annotations

import json
from pathlib import Path
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
    read_document,
    say,
    short_time,
    table,
    warn,
)
from vigil.masking import mask_url
from vigil.severity import SEVERITY_BY_NAME, severity_text

project_app = typer.Typer(
    help="Projects: each has its own keys, pipelines, sinks and outputs.", no_args_is_help=True
)
key_app = typer.Typer(help="Project API keys, for OTLP senders and agents.", no_args_is_help=True)
pipeline_app = typer.Typer(help="Pipelines: which records go to which agent, in what batches.")


def project_label(project: dict[str, Any]) -> str:
    return f"[bold]{escape(project['name'])}[/] ({project['id']})"


# --- projects -------------------------------------------------------------------------------------


@project_app.command("create")
def project_create(
    name: str, as_json: JsonOption = False, api_url: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None
) -> None:
    """Create a project."""
    with ApiClient.connect(api_url, token) as api:
        project = api.post("/projects", {"name": name})
    if as_json:
        print_json(project)
        return
    say(f"[green]created project[/] {project_label(project)}")
    say(f"next: [bold]vigil key create {escape(name)}[/]")


@project_app.command("list")
def project_list(
    as_json: JsonOption = False, api_url: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None
) -> None:
    """List projects."""
    with ApiClient.connect(api_url, token) as api:
        projects: list[dict[str, Any]] = api.get("/projects")
    if as_json:
        print_json(projects)
        return
    rows = [[p["id"], p["name"], short_time(p["created_at"])] for p in projects]
    console.print(table(["ID", "NAME", "CREATED"], rows))


@project_app.command("delete")
def project_delete(
    project: ProjectArg, api_url: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None
) -> None:
    """Delete a project with its keys, pipelines, sinks and outputs."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        api.delete(f"/projects/{found['id']}")
    say(f"[green]deleted project[/] {project_label(found)}")


# --- keys -----------------------------------------------------------------------------------------


@key_app.command("create")
def key_create(
    project: ProjectArg,
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "default",
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Create an API key; it is printed once, only its hash is stored."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        key = api.post(f"/projects/{found['id']}/api-keys", {"name": name})
    if as_json:
        print_json(key)
        return
    warn("This key is shown once: Vigil stores only its hash. Save it now.")
    # The key alone on stdout, so `KEY=$(vigil key create demo)` works.
    typer.echo(key["key"])
    warn(f"key {key['id']} ({key['name']}) for project {found['name']}")


@key_app.command("list")
def key_list(
    project: ProjectArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List a project's API keys (their prefixes, never the keys)."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        keys: list[dict[str, Any]] = api.get(f"/projects/{found['id']}/api-keys")
    if as_json:
        print_json(keys)
        return
    rows = [
        [
            k["id"],
            k["name"],
            f"{k['prefix']}…",
            short_time(k["created_at"]),
            Text(f"revoked {short_time(k['revoked_at'])}", style="red")
            if k["revoked"]
            else Text("active", style="green"),
        ]
        for k in keys
    ]
    console.print(
        table(["ID", "NAME", "PREFIX", "CREATED", "STATUS"], rows, title=f"API keys of {found['name']}")
    )


@key_app.command("revoke")
def key_revoke(
    project: ProjectArg, key_id: str, api_url: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None
) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        key = api.delete(f"/projects/{found['id']}/api-keys/{key_id}")
    say(f"[green]revoked key[/] {key['id']} ({escape(key['name'])}, {key['prefix']}…)")


# --- pipelines ------------------------------------------------------------------------------------


def _attributes(pairs: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--attr")
        parsed[key] = value
    return parsed


def _spec_from_flags(
    agent: str,
    kinds: list[str],
    min_severity: str | None,
    services: list[str],
    attrs: list[str],
    body_contains: str | None,
    max_records: int | None,
    max_wait_ms: int | None,
    timeout_s: float | None,
) -> dict[str, Any]:
    # Only what was given is sent: the API fills in its own defaults and validates the rest.
    given_filter: dict[str, Any] = {
        "kinds": kinds or None,
        "min_severity": min_severity,
        "services": services or None,
        "attributes": _attributes(attrs) or None,
        "body": {"contains": body_contains} if body_contains is not None else None,
    }
    given_batch = {"max_records": max_records, "max_wait_ms": max_wait_ms}
    spec: dict[str, Any] = {"agent": {"endpoint": agent}}
    if timeout_s is not None:
        spec["agent"]["timeout_s"] = timeout_s
    if flt := {k: v for k, v in given_filter.items() if v is not None}:
        spec["filter"] = flt
    if batch := {k: v for k, v in given_batch.items() if v is not None}:
        spec["batch"] = batch
    return spec


def _severity(number: int) -> str:
    name = severity_text(number)
    return name if SEVERITY_BY_NAME.get(name) == number else str(number)


def describe_filter(spec: dict[str, Any]) -> str:
    flt = spec.get("filter", {})
    parts = []
    if flt.get("kinds", ["log"]) != ["log"]:
        parts.append("kinds " + ",".join(flt["kinds"]))
    if "min_severity" in flt:
        parts.append(f"severity>={_severity(flt['min_severity'])}")
    if flt.get("services"):
        parts.append("service in " + ",".join(flt["services"]))
    for key, match in {**flt.get("attributes", {}), **flt.get("resource_attributes", {})}.items():
        parts.append(f"{key} {json.dumps(match)}")
    if flt.get("body"):
        parts.append(f"body {json.dumps(flt['body'])}")
    return "; ".join(parts) or "every log record"


def describe_batch(spec: dict[str, Any]) -> str:
    batch = spec.get("batch", {})
    return f"{batch.get('max_records', '?')} / {batch.get('max_wait_ms', '?')}ms"


@pipeline_app.command("set")
def pipeline_set(
    project: ProjectArg,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Pipeline name: lowercase letters, digits, - and _.")
    ],
    agent: Annotated[str | None, typer.Option("--agent", help="URL the batches are POSTed to.")] = None,
    kinds: Annotated[
        list[str] | None,
        typer.Option("--kind", help="What the pipeline takes: log (default) or incident (repeatable)."),
    ] = None,
    min_severity: Annotated[
        str | None,
        typer.Option("--min-severity", help="Lowest severity taken: a name (WARN, ERROR) or 1-24."),
    ] = None,
    services: Annotated[
        list[str] | None, typer.Option("--service", help="Take only these service.name values (repeatable).")
    ] = None,
    attrs: Annotated[
        list[str] | None,
        typer.Option("--attr", help="Record attribute key=value that must match (repeatable)."),
    ] = None,
    body_contains: Annotated[
        str | None, typer.Option("--body-contains", help="Text the body must contain.")
    ] = None,
    max_records: Annotated[
        int | None, typer.Option("--max-records", help="Records per batch (default 10).")
    ] = None,
    max_wait_ms: Annotated[
        int | None, typer.Option("--max-wait-ms", help="Longest wait to fill a batch (default 500).")
    ] = None,
    timeout_s: Annotated[
        float | None, typer.Option("--timeout-s", help="Agent request timeout in seconds (default 30).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="A full PipelineSpec as JSON or YAML, instead of the flags."),
    ] = None,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Create or replace a pipeline (flags not given take the API's defaults)."""
    flags = [kinds, min_severity, services, attrs, body_contains, max_records, max_wait_ms, timeout_s, agent]
    if file is not None:
        if any(f is not None and f != [] for f in flags):
            raise typer.BadParameter("give either --file or the flags, not both", param_hint="--file")
        spec = read_document(file)
    elif agent is None:
        raise typer.BadParameter("give --agent URL (or --file spec.yaml)", param_hint="--agent")
    else:
        spec = _spec_from_flags(
            agent,
            kinds or [],
            min_severity,
            services or [],
            attrs or [],
            body_contains,
            max_records,
            max_wait_ms,
            timeout_s,
        )
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        saved = api.put(f"/projects/{found['id']}/pipelines/{name}", spec)
    stored = saved["spec"]
    say(f"[green]saved pipeline[/] [bold]{escape(name)}[/] in project {project_label(found)}")
    say(
        f"  {escape(describe_filter(stored))} -> batches of {describe_batch(stored)} "
        f"-> {escape(mask_url(stored['agent']['endpoint']))}"
    )


@pipeline_app.command("get")
def pipeline_get(
    project: ProjectArg, name: str, api_url: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None
) -> None:
    """Print a pipeline's spec as JSON (usable with `pipeline set --file`; secret headers come back masked)."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        pipeline = api.get(f"/projects/{found['id']}/pipelines/{name}")
    print_json(pipeline["spec"])


@pipeline_app.command("list")
def pipeline_list(
    project: ProjectArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List a project's pipelines."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        pipelines: list[dict[str, Any]] = api.get(f"/projects/{found['id']}/pipelines")
    if as_json:
        print_json(pipelines)
        return
    rows = [
        [
            p["name"],
            Text("yes", style="green") if p["spec"].get("enabled", True) else Text("no", style="yellow"),
            describe_filter(p["spec"]),
            describe_batch(p["spec"]),
            mask_url(p["spec"]["agent"]["endpoint"]),
            short_time(p["updated_at"]),
        ]
        for p in pipelines
    ]
    columns = ["NAME", "ENABLED", "FILTER", "BATCH", "AGENT", "UPDATED"]
    console.print(table(columns, rows, title=f"Pipelines of {found['name']}"))


@pipeline_app.command("delete")
def pipeline_delete(
    project: ProjectArg, name: str, api_url: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None
) -> None:
    """Delete a pipeline."""
    with ApiClient.connect(api_url, token) as api:
        found = api.project(project)
        api.delete(f"/projects/{found['id']}/pipelines/{name}")
    say(f"[green]deleted pipeline[/] [bold]{escape(name)}[/] of project {project_label(found)}")
