"""`vigil mcp`: the MCP server on stdin and stdout, for agents that start their servers as
processes (desktop agents, IDEs). It relays to a running Vigil's `/mcp` with a project's API key,
so it has the same tools, the same bounds and the same project scoping, and needs no database or
secret of its own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from vigil import __version__
from vigil.mcp_server.http import MCP_PATH

TIMEOUT_S = 30.0


class UpstreamUnavailable(Exception):
    """The Vigil API cannot be reached, or refuses the key."""


def endpoint(api_url: str) -> str:
    return api_url.rstrip("/") + MCP_PATH


class Upstream:
    """The Vigil's `/mcp`, a short client session per call: the endpoint is stateless, so this
    costs a round trip more and survives Vigil's restarts and replicas."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ClientSession]:
        """An initialized session; what fails in it is raised as itself, not in task groups."""
        try:
            async with (
                streamable_http_client(self._url, http_client=self._http, terminate_on_close=False) as (
                    read,
                    write,
                ),
                ClientSession(read, write, read_timeout_seconds=TIMEOUT_S) as session,
            ):
                await session.initialize()
                yield session
        except BaseExceptionGroup as group:
            leaf = _leaf(group)
            if isinstance(leaf, BaseExceptionGroup):
                raise
            raise leaf from None

    async def check(self) -> types.InitializeResult:
        """Fail at once, and clearly, when Vigil cannot be reached or refuses the key."""
        try:
            answer = await self._http.post(
                self._url, json={}, headers={"Accept": "application/json, text/event-stream"}
            )
        except httpx2.HTTPError as exc:
            raise UpstreamUnavailable(f"cannot reach Vigil at {self._url}: {exc}") from exc
        if answer.status_code == 401:
            raise UpstreamUnavailable(f"Vigil at {self._url} refuses the API key: {_message(answer)}")
        if answer.status_code == 404:
            raise UpstreamUnavailable(f"no MCP server at {self._url}: is it a Vigil API of this version?")
        async with self.session() as session:
            return await session.initialize()


def _message(answer: httpx2.Response) -> str:
    try:
        return str(answer.json()["message"])
    except (ValueError, KeyError, TypeError):
        return answer.text[:200]


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _unreachable(exc: BaseException) -> str:
    exc = _leaf(exc)
    return f"Vigil did not answer: {type(exc).__name__}: {exc}"


def relay(upstream: Upstream, initialized: types.InitializeResult) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        async with upstream.session() as session:
            return await session.list_tools(params=params)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            async with upstream.session() as session:
                return await session.call_tool(params.name, params.arguments or {})
        except Exception as exc:  # the model is told, and may try again once Vigil is back
            text = _unreachable(exc)
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        async with upstream.session() as session:
            return await session.list_resources(params=params)

    async def list_resource_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        async with upstream.session() as session:
            return await session.list_resource_templates(params=params)

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        async with upstream.session() as session:
            return await session.read_resource(str(params.uri))

    return Server(
        "vigil",
        version=__version__,
        title="Vigil",
        instructions=initialized.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
    )


async def serve_stdio(api_url: str, api_key: str) -> None:
    timeout = httpx2.Timeout(TIMEOUT_S, read=300.0)
    async with httpx2.AsyncClient(headers={"X-API-Key": api_key}, timeout=timeout) as http:
        upstream = Upstream(http, endpoint(api_url))
        initialized = await upstream.check()
        server = relay(upstream, initialized)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
