"""`vigil demo`: realistic log traffic into a running Vigil, a built-in agent answering its batches,
and a summary of what came out."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

import httpx
import typer
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiError,
    ApiUrlOption,
    CliFailure,
    TokenOption,
    api_error,
    console,
    data_dir,
    fail,
    say,
    table,
    warn,
)
from vigil.severity import severity_text

DEFAULT_RECEIVER_URL = "http://127.0.0.1:4318"
PROJECT = "demo"
PIPELINE = "demo-errors"
KEY_FILE = "demo-key"
AGENT_NAME = "vigil-demo-agent"
DRAIN_TIMEOUT_S = 20.0
"""How long the summary waits for the last batches and outputs after the traffic stops."""


class OutputSender(Protocol):
    async def send_output(self, payload: Mapping[str, Any], request_id: str) -> Any: ...

    async def aclose(self) -> None: ...


class _HttpxSender:
    """The agent protocol's output call by hand (`POST /internal/agent-output`), for when the SDK is not installed."""

    def __init__(self, receiver_url: str, api_key: str) -> None:
        self._url = f"{receiver_url}/internal/agent-output"
        self._http = httpx.AsyncClient(timeout=10, headers={"X-API-Key": api_key})

    async def send_output(self, payload: Mapping[str, Any], request_id: str) -> Any:
        response = await self._http.post(
            self._url,
            json={"request_id": request_id, "payload": dict(payload)},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        response.raise_for_status()
        return response.json()

    async def aclose(self) -> None:
        await self._http.aclose()


def output_sender(receiver_url: str, api_key: str) -> OutputSender:
    try:
        from vigil_sdk import AsyncVigil
    except ImportError:
        return _HttpxSender(receiver_url, api_key)
    return AsyncVigil(api_key=api_key, endpoint=receiver_url, max_retries=3)


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What a real agent would say about a batch, minus the model: counts and the loudest message."""
    services = Counter(str(r.get("resourceAttributes", {}).get("service.name", "unknown")) for r in records)
    levels = Counter(str(r.get("severityText") or r.get("severityNumber")) for r in records)
    worst = max((int(r.get("severityNumber") or 0) for r in records), default=0)
    loudest = Counter(str(r.get("body", "")) for r in records if int(r.get("severityNumber") or 0) == worst)
    top, top_count = loudest.most_common(1)[0] if loudest else ("", 0)
    level = severity_text(worst) or "UNSPECIFIED"
    mix = ", ".join(f"{n} {name}" for name, n in levels.most_common())
    return {
        "summary": f"{len(records)} records ({mix}) from {', '.join(sorted(services))}; "
        f"top {level}: {top} (x{top_count})",
        "severity": "critical" if worst >= 17 else "warning" if worst >= 13 else "informational",
        "services": dict(services),
        "top_message": top,
        "trace_ids": sorted({str(r["traceId"]) for r in records if r.get("traceId")})[:5],
        "processed": len(records),
        "agent": AGENT_NAME,
    }


class DemoAgent:
    """Takes batches on /process and answers each with an output, as agents of the agent protocol do."""

    def __init__(self, receiver_url: str, api_key: str) -> None:
        self.batches = 0
        self.records = 0
        self.outputs = 0
        self.failures: list[str] = []
        self._sender = output_sender(receiver_url, api_key)
        self.app = Starlette(
            routes=[
                Route("/process", self._process, methods=["POST"]),
                Route("/healthz", self._healthz, methods=["GET"]),
            ]
        )

    async def _process(self, request: Request) -> JSONResponse:
        try:
            records = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(records, list):
            return JSONResponse({"error": "body is not a JSON array"}, status_code=400)
        self.batches += 1
        self.records += len(records)
        try:
            await self._sender.send_output(summarize(records), request.headers.get("x-request-id", ""))
        except Exception as exc:
            # A 5xx makes Vigil retry the batch, which is what a real agent wants here too.
            self.failures.append(repr(exc))
            return JSONResponse({"error": f"could not send output: {exc}"}, status_code=502)
        self.outputs += 1
        return JSONResponse({"status": "ok"})

    async def _healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def aclose(self) -> None:
        await self._sender.aclose()


# --- project setup ------------------------------------------------------------------------------


def demo_key(api: ApiClient, project_id: str) -> str:
    """The key kept from an earlier run if the API still knows it, else a new one (kept for next time)."""
    path = data_dir() / KEY_FILE
    stored = path.read_text().strip() if path.is_file() else ""
    if stored:
        keys: list[dict[str, Any]] = api.get(f"/projects/{project_id}/api-keys")
        # The API only shows prefixes; a matching active one means the stored key is still valid.
        if any(k["prefix"] == stored[: len(k["prefix"])] and not k["revoked"] for k in keys):
            return stored
    created = api.post(f"/projects/{project_id}/api-keys", {"name": "demo"})
    key: str = created["key"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def pipeline_spec(agent_url: str) -> dict[str, Any]:
    return {
        "filter": {"min_severity": "WARN"},
        "batch": {"max_records": 10, "max_wait_ms": 500},
        "agent": {"endpoint": agent_url, "timeout_s": 30},
        "dedupe": {"window_s": 60},
    }


# --- traffic ------------------------------------------------------------------------------------


async def export(http: httpx.AsyncClient, receiver_url: str, body: bytes) -> None:
    for attempt in range(5):
        try:
            response = await http.post(f"{receiver_url}/v1/logs", content=body)
        except httpx.ConnectError as exc:
            raise CliFailure(
                f"cannot connect to the receiver: is `vigil up` running at {receiver_url}?"
            ) from exc
        except httpx.TransportError as exc:
            raise CliFailure(f"cannot reach the receiver at {receiver_url}: {exc!r}") from exc
        if response.status_code in (429, 503) and attempt < 4:
            # Vigil sheds load with Retry-After; a well-behaved exporter waits as told.
            await asyncio.sleep(min(float(response.headers.get("retry-after") or 0.5), 5.0))
            continue
        if response.status_code == 401:
            raise CliFailure(f"the receiver refused the API key: {api_error(response).message}")
        if response.is_error:
            raise api_error(response)
        return


async def send_traffic(
    receiver_url: str, api_key: str, duration_s: float, rate: int, agent: DemoAgent | None
) -> int:
    """Send `duration_s * rate` records paced at `rate` per second; returns how many were accepted."""
    from vigil.demo_traffic import count_records, generate_requests

    total = max(1, round(duration_s * rate))
    per_request = min(50, max(1, rate // 2), total)
    interval_s = per_request / rate
    burst = (0.4, 0.6)
    loop = asyncio.get_running_loop()
    sent = 0
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records  {task.fields[rate]:>5.0f}/s  agent batches {task.fields[batches]}"),
        TimeElapsedColumn(),
        console=console,
    )
    headers = {"Content-Type": "application/x-protobuf", "X-API-Key": api_key}
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        with progress:
            task = progress.add_task("normal traffic", total=total, rate=0.0, batches="-")
            start = loop.time()
            for i, request in enumerate(
                generate_requests(total, records_per_request=per_request, burst=burst)
            ):
                delay = start + i * interval_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await export(http, receiver_url, request.SerializeToString())
                sent += count_records(request)
                in_burst = burst[0] <= sent / total < burst[1]
                progress.update(
                    task,
                    completed=sent,
                    description="[red]payment-service incident[/]" if in_burst else "normal traffic",
                    rate=sent / max(loop.time() - start, 1e-3),
                    batches=agent.batches if agent else "-",
                )
    return sent


# --- summary ------------------------------------------------------------------------------------


def _batched_records(stats: dict[str, Any]) -> int:
    return sum(int(s["records"]) for s in stats["batches"].values())


def _unfinished(stats: dict[str, Any]) -> int:
    return sum(int(stats["batches"].get(s, {}).get("batches", 0)) for s in ("pending", "retrying"))


def summary_table(sent: int, agent: DemoAgent | None, before: dict[str, Any], now: dict[str, Any]) -> Any:
    def grown(field: int, total: int) -> str:
        return f"{field}  ({total} in the project)" if field != total else str(field)

    outputs = now["outputs"] - before["outputs"]
    dead = max(0, now["dead_letters"] - before["dead_letters"])
    rows: list[list[str | Text]] = [
        ["records sent", str(sent)],
        ["records batched for agents", str(_batched_records(now) - _batched_records(before))],
    ]
    if agent is not None:
        rows.append(["batches the demo agent received", f"{agent.batches}  ({agent.records} records)"])
    rows.append(["outputs stored", grown(outputs, now["outputs"])])
    rows.append([Text("dead letters", style="red" if dead else ""), grown(dead, now["dead_letters"])])
    rows.append(["batches pending or retrying", str(_unfinished(now))])
    return table(["", "THIS RUN"], rows, title=f"vigil demo: project {PROJECT}")


async def watch(
    api: ApiClient, project_id: str, before: dict[str, Any], sent: int, agent: DemoAgent | None
) -> bool:
    """Show the summary live until the last batches are answered and stored; False on timeout."""
    loop = asyncio.get_running_loop()
    settle_at = loop.time() + 1.5  # the router may still hold a partly filled batch (max_wait_ms)
    deadline = loop.time() + DRAIN_TIMEOUT_S
    now = before
    try:
        with Live(summary_table(sent, agent, before, now), console=console, refresh_per_second=4) as live:
            while True:
                now = await asyncio.to_thread(api.get, f"/projects/{project_id}/stats")
                live.update(summary_table(sent, agent, before, now))
                stored_all = agent is None or now["outputs"] - before["outputs"] >= agent.outputs
                if loop.time() >= settle_at and _unfinished(now) == 0 and stored_all:
                    return True
                if loop.time() >= deadline:
                    return False
                await asyncio.sleep(0.5)
    finally:
        if not console.is_terminal:
            console.line()  # rich ends the last frame without a newline when not on a terminal


async def run_demo(
    api: ApiClient,
    project: dict[str, Any],
    key: str,
    receiver_url: str,
    duration_s: float,
    rate: int,
    with_agent: bool,
) -> None:
    from vigil.http_server import HttpServer

    project_id = project["id"]
    pipeline_path = f"/projects/{project_id}/pipelines/{PIPELINE}"
    before = await asyncio.to_thread(api.get, f"/projects/{project_id}/stats")
    agent = DemoAgent(receiver_url, key) if with_agent else None
    server = HttpServer(agent.app, host="127.0.0.1", port=0, name="demo-agent") if agent else None
    try:
        if server is not None:
            await server.start()
            agent_url = f"http://127.0.0.1:{server.port}/process"
            await asyncio.to_thread(api.put, pipeline_path, pipeline_spec(agent_url))
            say(
                f"demo agent listening on [bold]{agent_url}[/]; pipeline [bold]{PIPELINE}[/] sends it WARN and up"
            )
        else:
            pipelines = await asyncio.to_thread(api.get, f"/projects/{project_id}/pipelines")
            if not any(p["spec"].get("enabled", True) for p in pipelines):
                warn(f"project {PROJECT} has no enabled pipeline: records are accepted but reach no agent")
        sent = await send_traffic(receiver_url, key, duration_s, rate, agent)
        if not await watch(api, project_id, before, sent, agent):
            warn(f"some batches are not answered yet; see `vigil batches {PROJECT}`")
        if agent is not None and agent.failures:
            warn(f"the demo agent could not send {len(agent.failures)} outputs, first: {agent.failures[0]}")
        latest = await asyncio.to_thread(api.get, f"/projects/{project_id}/outputs", limit=1)
        if latest:
            say(f"latest output: [italic]{escape(str(latest[0]['payload'].get('summary', '')))}[/]")
    finally:
        if server is not None:
            # The agent goes away with this process; a pipeline left pointing at it would only fill dead letters.
            spec = {**pipeline_spec(f"http://127.0.0.1:{server.port}/process"), "enabled": False}
            try:
                await asyncio.to_thread(api.send, "PUT", pipeline_path, body=spec)
            except CliFailure as exc:
                warn(f"could not disable pipeline {PIPELINE}: {exc}")
            await server.shutdown()
        if agent is not None:
            await agent.aclose()


def next_steps(api_url: str, receiver_url: str, project_id: str, with_agent: bool) -> None:
    flag = "" if api_url == DEFAULT_API_URL else f" --api-url {api_url}"
    token = (
        "$VIGIL_ADMIN_TOKEN"
        if os.environ.get("VIGIL_ADMIN_TOKEN")
        else f"$(cat {data_dir() / 'admin-token'})"
    )
    record = (
        '{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payment-service"}}]},'
        '"scopeLogs":[{"logRecords":[{"severityNumber":17,"severityText":"ERROR",'
        '"body":{"stringValue":"Connection refused: database pool exhausted"}}]}]}]}'
    )
    lines = [
        f"vigil outputs {PROJECT}{flag}",
        f"vigil batches {PROJECT}{flag}",
        f"vigil pipeline get {PROJECT} {PIPELINE}{flag}",
        f"vigil stats {PROJECT}{flag}",
        f'curl -s -H "Authorization: Bearer {token}" "{api_url}/api/v1/projects/{project_id}/outputs?limit=5"',
        f'curl -s -X POST {receiver_url}/v1/logs -H "X-API-Key: $(cat {data_dir() / KEY_FILE})" '
        f"-H 'Content-Type: application/json' -d '{record}'",
    ]
    say("\n[bold]Explore what happened:[/]")
    for line in lines:
        say(f"  {escape(line)}")
    if with_agent:
        say(
            f"\nThe demo agent stopped with the demo, so pipeline {PIPELINE} is now disabled. Point it at your "
            f"own agent with: vigil pipeline set {PROJECT} {PIPELINE} --agent URL --min-severity WARN{escape(flag)}"
        )


def demo(
    receiver_url: Annotated[
        str, typer.Option("--receiver-url", envvar="VIGIL_RECEIVER_URL", help="OTLP/HTTP receiver of Vigil.")
    ] = DEFAULT_RECEIVER_URL,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Only send traffic, with this project key: no setup, no agent."),
    ] = None,
    duration: Annotated[float, typer.Option("--duration", min=0.1, help="Seconds of traffic.")] = 20.0,
    rate: Annotated[int, typer.Option("--rate", min=1, help="Records per second.")] = 200,
    no_agent: Annotated[
        bool,
        typer.Option(
            "--no-agent", help="No built-in agent; the project's own pipelines are left as they are."
        ),
    ] = False,
) -> None:
    """Send realistic log traffic to a running Vigil and show it reach an agent and come back as outputs."""
    receiver_url = receiver_url.rstrip("/")
    try:
        if api_key is not None:
            sent = asyncio.run(send_traffic(receiver_url, api_key, duration, rate, None))
            say(f"[green]sent {sent} records[/] to {escape(receiver_url)}")
            return
        with ApiClient.connect(api_url, token) as api:
            project = api.find_project(PROJECT) or api.post("/projects", {"name": PROJECT})
            key = demo_key(api, project["id"])
            say(f"project [bold]{PROJECT}[/] ({project['id']}), key in {data_dir() / KEY_FILE}")
            asyncio.run(run_demo(api, project, key, receiver_url, duration, rate, not no_agent))
        next_steps(api_url.rstrip("/"), receiver_url, project["id"], not no_agent)
    except (CliFailure, ApiError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        warn("interrupted")
        raise typer.Exit(130) from None
