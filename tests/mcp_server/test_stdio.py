"""`vigil mcp` as a subprocess, through the SDK's own stdio client, relaying to a real running
Vigil with a project's key: the same tools, the same project scoping; a wrong key or an absent
Vigil is one clear line and exit code 1, and a restart of Vigil is a failed call, not a dead relay."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from tests.cli.test_admin import closed_port
from tests.conftest import VigilHandle, make_settings, running
from tests.mcp_server.test_http import call, fire, refused

VIGIL_MCP = [sys.executable, "-m", "vigil.cli.main", "mcp"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_vigil_mcp_relays_the_tools_of_the_keys_project(vigil: VigilHandle, tmp_path: Path) -> None:
    shop, key = await vigil.project_with_key("shop")
    other, other_key = await vigil.project_with_key("other")
    ours = await fire(vigil, shop, key, "QueueBacklog")
    theirs = await fire(vigil, other, other_key, "DiskFull")
    server = StdioServerParameters(
        command=VIGIL_MCP[0], args=VIGIL_MCP[1:], env={"VIGIL_API_URL": vigil.api_url, "VIGIL_API_KEY": key}
    )
    with (tmp_path / "stderr").open("w") as errlog:
        async with (
            stdio_client(server, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            initialized = await session.initialize()
            assert initialized.server_info.name == "vigil"
            assert initialized.instructions and "propose" in initialized.instructions
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert {"list_incidents", "propose_action", "get_action_result", "query_templates"} <= tools
            listed = await call(session, "list_incidents", status="open")
            assert [incident["id"] for incident in listed["incidents"]] == [ours]
            assert (await call(session, "get_incident", incident_id=ours))["project"] == shop
            assert "no incident" in await refused(session, "get_incident", incident_id=theirs)
            [content] = (await session.read_resource(f"vigil://incidents/{ours}")).contents
            assert isinstance(content, types.TextResourceContents) and json.loads(content.text)["id"] == ours
            with pytest.raises(MCPError, match="no incident"):
                await session.read_resource(f"vigil://incidents/{theirs}")
    assert "Traceback" not in (tmp_path / "stderr").read_text()


async def run_vigil_mcp(api_url: str, key: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *VIGIL_MCP,
        "--api-url",
        api_url,
        env={"VIGIL_API_KEY": key, "PATH": "/usr/bin:/bin", "COLUMNS": "250"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_a_wrong_key_or_no_vigil_is_one_clear_line(vigil: VigilHandle) -> None:
    code, stdout, stderr = await run_vigil_mcp(vigil.api_url, "vgl_not-a-key")
    assert (code, stdout) == (1, "")
    assert "refuses the API key: invalid or revoked API key" in stderr and "Traceback" not in stderr
    nowhere = f"http://127.0.0.1:{closed_port()}"
    code, stdout, stderr = await run_vigil_mcp(nowhere, "vgl_not-a-key")
    assert (code, stdout) == (1, "")
    assert f"cannot reach Vigil at {nowhere}/mcp" in stderr and "Traceback" not in stderr


async def test_vigil_mcp_outlives_a_restart_of_vigil(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path / "vigil", api_port=port)
    async with running(settings) as vigil:
        shop, key = await vigil.project_with_key("shop")
        ours = await fire(vigil, shop, key, "QueueBacklog")
    server = StdioServerParameters(
        command=VIGIL_MCP[0],
        args=VIGIL_MCP[1:],
        env={"VIGIL_API_URL": f"http://127.0.0.1:{port}", "VIGIL_API_KEY": key},
    )
    with (tmp_path / "stderr").open("w") as errlog:
        async with (
            running(settings) as vigil,
            stdio_client(server, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            assert [i["id"] for i in (await call(session, "list_incidents"))["incidents"]] == [ours]
            await vigil.runtime.shutdown()
            assert "Vigil did not answer: ConnectError" in await refused(session, "list_incidents")
            async with running(settings):
                assert [i["id"] for i in (await call(session, "list_incidents"))["incidents"]] == [ours]
