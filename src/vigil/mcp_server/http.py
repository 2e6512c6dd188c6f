"""`/mcp` on the API port: the MCP server over streamable HTTP, behind a project's API key
(`X-API-Key`, or `Authorization: Bearer <key>`). A missing or wrong key is answered 401 before
any of the request is read; the key's project is the only one its tools see.

Stateless and answered as JSON: every request stands alone, so any API replica can answer it
and nothing is lost when one restarts. The SDK's session manager runs a task group of its own,
started and stopped with the API (a component, as the API's server runs without a lifespan).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from vigil.api.errors import error_response
from vigil.api.guard import header
from vigil.errors import Unauthorized
from vigil.mcp_server.server import PROJECT_SCOPE_KEY, build_mcp_server
from vigil.mcp_server.tools import VigilTools
from vigil.receivers.keys import KeyResolver, key_from_headers

MCP_PATH = "/mcp"
MAX_BODY_BYTES = 1024 * 1024


class McpEndpoint:
    """An ASGI app for `/mcp`, with a lifecycle: `start` before the API serves, `shutdown` after."""

    def __init__(self, tools: VigilTools, keys: KeyResolver) -> None:
        self._keys = keys
        # the SDK tells of every request at INFO; Vigil's own logs say what matters
        logging.getLogger("mcp").setLevel(logging.WARNING)
        self.server: MCPServer[Any] = build_mcp_server(tools)
        # builds the session manager; the Starlette app it returns is not used: requests come
        # through __call__, after their key is checked
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            max_request_body_size=MAX_BODY_BYTES,
            # every request carries a project key, which a page that rebinds a name cannot know
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._manager = self.server.session_manager
        self._stop = asyncio.Event()
        self._running = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mcp-sessions")
        waiting = asyncio.create_task(self._running.wait())
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._task.done():
            self._task.result()  # raises what stopped it
            raise RuntimeError("the MCP session manager stopped during start-up")

    async def _run(self) -> None:
        async with self._manager.run():
            self._running.set()
            await self._stop.wait()

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            key = key_from_headers(header(scope, b"x-api-key"), header(scope, b"authorization"))
            project_id = await self._keys.project_for(key)
        except Unauthorized as exc:
            response = error_response(exc.status, exc.code, exc.message)
            response.headers["WWW-Authenticate"] = 'Bearer realm="vigil"'
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        if not self._running.is_set() or self._task is None:
            unavailable = error_response(503, "unavailable", "the MCP server is not running")
            await unavailable(scope, receive, send)
            return
        await self._manager.handle_request({**scope, PROJECT_SCOPE_KEY: project_id}, receive, send)
