"""`vigil mcp`: Vigil's MCP server on stdin and stdout, relayed to a running Vigil's `/mcp`."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from vigil.cli.client import DEFAULT_API_URL, ApiUrlOption, fail
from vigil.logs import configure_logging

KeyOption = Annotated[
    str,
    typer.Option(
        "--api-key",
        envvar="VIGIL_API_KEY",
        help="A project's API key: the tools see that project only.",
        show_default=False,
    ),
]


def mcp(api_key: KeyOption, api_url: ApiUrlOption = DEFAULT_API_URL) -> None:
    """Serve Vigil's MCP tools on stdin/stdout (for agents that start MCP servers as processes),
    relayed to the Vigil API at --api-url with a project's API key."""
    from vigil.mcp_server.stdio import UpstreamUnavailable, serve_stdio

    configure_logging("WARNING")  # stderr only: stdout carries the protocol
    for chatty in ("mcp", "httpx2"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        asyncio.run(serve_stdio(api_url, api_key))
    except UpstreamUnavailable as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
