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


@contextlib.asynccontextmanager
async def upstream(api_url: str, api_key: str) -> AsyncIterator[tuple[ClientSession, types.InitializeResult]]:
    """A client session with the Vigil's `/mcp`, initialized; its key checked at once."""
    url = endpoint(api_url)
    async with httpx2.AsyncClient(
        headers={"X-API-Key": api_key}, timeout=httpx2.Timeout(TIMEOUT_S, read=300.0)
    ) as http:
        try:
            answer = await http.post(url, json={}, headers={"Accept": "application/json, text/event-stream"})
        except httpx2.HTTPError as exc:
            raise UpstreamUnavailable(f"cannot reach Vigil at {url}: {exc}") from exc
        if answer.status_code == 401:
            raise UpstreamUnavailable(f"Vigil at {url} refuses the API key: {_message(answer)}")
        if answer.status_code == 404:
            raise UpstreamUnavailable(f"no MCP server at {url}: is it a Vigil API of this version?")
        async with (
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            initialized = await session.initialize()
            yield session, initialized


def _message(answer: httpx2.Response) -> str:
    try:
        return str(answer.json()["message"])
    except (ValueError, KeyError, TypeError):
        return answer.text[:200]


def relay(session: ClientSession, initialized: types.InitializeResult) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await session.list_tools(params=params)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            return await session.call_tool(params.name, params.arguments or {})
        except Exception as exc:  # the model is told, and may try again once Vigil is back
            text = f"Vigil did not answer: {type(exc).__name__}: {exc}"
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)

    return Server(
        "vigil",
        version=__version__,
        title="Vigil",
        instructions=initialized.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(api_url: str, api_key: str) -> None:
    async with upstream(api_url, api_key) as (session, initialized):
        server = relay(session, initialized)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
