"""The README's snippets keep working: its Python compiles and names nothing it does not define,
and runs against a real runtime (logs reach an agent, spans open an incident); its shell parses;
every `vigil` command it names exists."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.conftest import VigilHandle, make_settings, running
from vigil.cli.main import app

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RECEIVER = "http://127.0.0.1:4318"


def snippets(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def python_snippet(containing: str) -> str:
    [found] = [s for s in snippets("python") if containing in s]
    return found


def test_the_readme_has_the_snippets_this_file_checks() -> None:
    assert len(snippets("python")) >= 2 and len(snippets("bash")) >= 4


@pytest.mark.parametrize("index", range(len(snippets("python"))))
def test_python_snippets_compile_and_define_what_they_use(index: int) -> None:
    code = snippets("python")[index]
    compile(code, f"README.md python snippet {index}", "exec")
    # pyflakes' checks as ruff has them: undefined names (F821), unused or shadowed imports
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--isolated",
            "--select",
            "F",
            "--stdin-filename",
            "snippet.py",
            "-",
        ],
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("index", range(len(snippets("bash"))))
def test_shell_snippets_parse(index: int) -> None:
    checked = subprocess.run(
        ["bash", "-n"], input=snippets("bash")[index], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr


def vigil_commands() -> set[tuple[str, ...]]:
    """`vigil WORD [WORD]` wherever the README shows a command: in shell snippets and inline code."""
    text = README.read_text()
    places = snippets("bash") + re.findall(r"`([^`\n]*vigil [^`\n]*)`", text)
    found = set()
    for place in places:
        for words in re.findall(r"(?<![\w/.-])vigil((?: [a-z][a-z-]*){1,2})", place):
            found.add(tuple(words.split()))
    return found


def test_every_vigil_command_the_readme_names_exists() -> None:
    root: Any = typer.main.get_command(app)
    commands = vigil_commands()
    assert ("incidents", "list") in commands and ("evidence", "payments") in commands
    for words in sorted(commands):
        command = root.commands.get(words[0])
        assert command is not None, f"`vigil {' '.join(words)}`: no command {words[0]!r}"
        subcommands = getattr(command, "commands", None)
        if subcommands and len(words) > 1 and not command.invoke_without_command:
            assert words[1] in subcommands, (
                f"`vigil {' '.join(words)}`: {words[0]} has no command {words[1]!r}"
            )


# --- the Python snippets, run as a reader runs them ---------------------------------------------


@pytest.fixture
async def fast_windows(tmp_path: Path) -> AsyncIterator[VigilHandle]:
    detect = {"window_s": 1.0, "allowed_lateness_s": 0.2, "idle_grace_s": 0.5}
    async with running(make_settings(tmp_path / "vigil", detect=detect)) as handle:
        yield handle


async def run_snippet(code: str, vigil: VigilHandle, key: str, tmp_path: Path) -> None:
    assert RECEIVER in code  # the README's address, pointed at this test's receiver
    script = tmp_path / "snippet.py"
    script.write_text(code.replace(RECEIVER, vigil.receiver_url))
    env = {**os.environ, "KEY": key}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode()
    assert b"Traceback" not in output and b"Failed to export" not in output, output.decode()


async def eventually(probe: Any, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + 30
    while not (found := await probe()):
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.2)
    return found


async def test_the_logs_snippet_reaches_an_agent(vigil: VigilHandle, tmp_path: Path) -> None:
    project_id, key = await vigil.project_with_key()
    spec = {"filter": {"min_severity": "ERROR"}, "agent": {"endpoint": "builtin:error-summary"}}
    assert (
        await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=spec)
    ).status_code == 200
    await run_snippet(python_snippet("OTLPLogExporter"), vigil, key, tmp_path)

    async def outputs() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await vigil.api.get(f"/api/v1/projects/{project_id}/outputs")).json()
        return found

    [output] = await eventually(outputs, "the snippet's error reached no agent")
    [record] = output["batch"]["records"]
    assert record["body"] == "Connection refused: database pool exhausted"
    assert record["resourceAttributes"]["service.name"] == "payment-service"


async def test_the_spans_snippet_opens_an_incident(fast_windows: VigilHandle, tmp_path: Path) -> None:
    vigil = fast_windows
    project_id, key = await vigil.project_with_key()
    await run_snippet(python_snippet("OTLPSpanExporter"), vigil, key, tmp_path)

    async def incidents() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()
        return found

    [incident] = await eventually(incidents, "the snippet's spans opened no incident")
    assert incident["services"] == ["payment-service"]
    assert incident["title"].startswith("Error rate") and "POST /pay" in incident["title"]
