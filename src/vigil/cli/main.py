"""`vigil`: run the runtime, manage it through its API, and evaluate its detectors."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel

from vigil import __version__
from vigil.cli import admin, analyze, deliveries, demo, details, replay, runbooks, sinks
from vigil.cli.alerts import alerts_app
from vigil.cli.approvals import approvals_app
from vigil.cli.feedback import feedback_app
from vigil.cli.incidents import incidents_app
from vigil.cli.mcp import mcp
from vigil.cli.secrets import secrets_app
from vigil.cli.workflows import policy_app, workflows_app
from vigil.errors import VigilError
from vigil.logs import configure_logging
from vigil.settings import Settings

app = typer.Typer(
    name="vigil", help="OpenTelemetry in, incidents and agents' actions out.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(stderr=True)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where it exists: its C event loop and transports take about half of asyncio's
    CPU per socket write and wake-up, which is most of what a delivered batch costs."""
    try:
        import uvloop
    except ImportError:  # not built for this platform
        asyncio.run(main)
    else:
        uvloop.run(main)


def _freeze_startup_objects() -> None:
    """What starting made (modules, schemas, models: some 300,000 objects) lives as long as the
    process: out of the collector's reach, a full collection no longer walks it each time, which
    took about 200 ms of CPU, and as long a stall of the event loop. Here rather than in the
    runtime, which tests start and stop many times in one process."""
    gc.collect()
    gc.freeze()


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="A vigil.yaml to apply at start.")]
DataDirOption = Annotated[Path | None, typer.Option(help="Data directory (default ./.vigil).")]
HostOption = Annotated[
    str | None,
    typer.Option(
        "--host",
        help="Address to listen on (VIGIL_HOST; default 127.0.0.1, loopback only): 0.0.0.0 for every interface.",
        show_default=False,
    ),
]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _url_host(host: str) -> str:
    """Where a browser on this machine reaches the API."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def serve(
    roles: frozenset[str], config: Path | None = None, data_dir: Path | None = None, host: str | None = None
) -> None:
    """Run the given parts of Vigil until SIGTERM or SIGINT, then stop them gracefully."""
    from vigil.runtime import ROLES, Runtime

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if config is not None:
        overrides["config_file"] = config
    elif Path("vigil.yaml").exists() and "api" in roles:
        overrides["config_file"] = Path("vigil.yaml")
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_format)
    os.umask(0o077)  # what Vigil and its nats-server write is theirs alone: the data dir holds secrets

    async def main() -> None:
        runtime = Runtime(settings, roles)
        try:
            await runtime.start()
            _freeze_startup_objects()
            if runtime.token_generated:
                console.print(
                    Panel(
                        f"Admin token (stored in {settings.data_dir / 'admin-token'}):\n[bold]{runtime.admin_token}[/]",
                        title="First start",
                    )
                )
            names = {"otlp_http": "OTLP/HTTP", "otlp_grpc": "OTLP/gRPC", "api": "API", "ops": "metrics"}
            ports = "  ".join(f"{names[k]} :{v}" for k, v in runtime.ports().items())
            what = "is up" if roles == ROLES else f"{'+'.join(sorted(roles))} is up"
            console.print(f"[green]Vigil {__version__} {what}[/] on {settings.host}: {ports}")
            if "api" in roles:
                api = f"http://{_url_host(settings.host)}:{runtime.ports()['api']}"
                console.print(f"API docs: {api}/docs")
            if _is_loopback(settings.host):
                console.print(
                    "[dim]Listening on loopback only: `--host 0.0.0.0` (or VIGIL_HOST) to be reached from other hosts.[/]"
                )
            await runtime.run_until_signalled()
        finally:
            await runtime.shutdown()

    try:
        run_event_loop(main())
    except (RuntimeError, VigilError) as exc:
        console.print(f"error: {exc}", style="red", markup=False)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        sys.exit(130)


@app.command()
def up(config: ConfigOption = None, data_dir: DataDirOption = None, host: HostOption = None) -> None:
    """Run every part of Vigil in one process on the embedded defaults."""
    from vigil.runtime import ROLES

    serve(ROLES, config, data_dir, host)


@app.command()
def receiver(data_dir: DataDirOption = None, host: HostOption = None) -> None:
    """Run the OTLP receivers and the agents' data plane as a service of its own (needs VIGIL_NATS_URL)."""
    serve(frozenset({"receiver"}), data_dir=data_dir, host=host)


@app.command()
def api(config: ConfigOption = None, data_dir: DataDirOption = None, host: HostOption = None) -> None:
    """Run the management API as a service of its own (needs VIGIL_NATS_URL)."""
    serve(frozenset({"api"}), config, data_dir, host)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations up to the newest revision."""
    from vigil.store.db import upgrade

    settings = Settings()
    asyncio.run(upgrade(settings.sqlalchemy_url()))
    console.print("[green]database is up to date[/]")


app.add_typer(secrets_app, name="secrets")
app.add_typer(admin.project_app, name="project")
app.add_typer(admin.key_app, name="key")
app.add_typer(admin.pipeline_app, name="pipeline")


@admin.pipeline_app.callback(invoke_without_command=True)
def pipeline_service(ctx: typer.Context, data_dir: DataDirOption = None) -> None:
    """Pipelines: which records go to which agent, in what batches. Without a command: run the
    pipeline service (router and agent delivery; needs VIGIL_NATS_URL)."""
    if ctx.invoked_subcommand is None:
        serve(frozenset({"pipeline"}), data_dir=data_dir)


app.add_typer(sinks.sink_app, name="sink")


@sinks.sink_app.callback(invoke_without_command=True)
def sink_service(ctx: typer.Context, data_dir: DataDirOption = None) -> None:
    """Sinks: where agents' outputs are delivered. Without a command: run the sink service
    (output storage and delivery; needs VIGIL_NATS_URL)."""
    if ctx.invoked_subcommand is None:
        serve(frozenset({"sink"}), data_dir=data_dir)


app.add_typer(deliveries.dead_letters_app, name="dead-letters")
app.add_typer(incidents_app, name="incidents")
app.add_typer(alerts_app, name="alerts")
app.add_typer(workflows_app, name="workflows")
app.add_typer(approvals_app, name="approvals")
app.add_typer(feedback_app, name="feedback")
app.add_typer(runbooks.runbooks_app, name="runbooks")
app.add_typer(policy_app, name="policy")
app.command("audit")(runbooks.audit)
app.command("mcp")(mcp)
app.command("outputs")(deliveries.outputs)
app.command("batches")(deliveries.batches)
app.command("evidence")(details.evidence)
app.command("llm-usage")(details.llm_usage)
app.command("stats")(deliveries.stats)
app.command("demo")(demo.demo)
app.command("replay")(replay.replay)
app.command("analyze")(analyze.analyze)


@app.command()
def templates(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="One log message per line.")],
) -> None:
    """Mine log templates: write CSV `template_id,template` for every input line, in order."""
    from vigil.pipeline.templates_cli import run_templates

    run_templates(file, sys.stdout)


@app.command()
def detect(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with timestamp,value rows.")],
) -> None:
    """Score a numeric series: write `timestamp,value,anomaly_score` (0-1, from past rows only)."""
    from vigil.detect.detect_cli import DetectInputError, run_detect

    try:
        run_detect(file, sys.stdout)
    except DetectInputError as exc:
        console.print(f"error: {file}: {exc}", style="red", markup=False)
        raise typer.Exit(1) from exc


if __name__ == "__main__":
    app()
