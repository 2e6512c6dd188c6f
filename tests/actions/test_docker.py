"""Restarting a container against the Docker double, once per key even across a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.actions.conftest import MakeContext, policy_for
from tests.doubles.docker_server import DockerServer
from vigil.actions import ActionRefused, ActionStep, FileLedger, MemoryLedger, execute, inverse, plan


def restart(container: str = "web") -> ActionStep:
    return ActionStep(action="docker.restart", params={"container": container})


def live(engine: DockerServer, **extra: object) -> dict[str, object]:
    section = {
        "enabled": True,
        "dry_run": False,
        "containers": ["web", "api-*"],
        "connection": {"base_url": engine.docker_url},
    }
    return section | extra


async def test_the_dry_run_reads_the_container_and_restarts_nothing(
    engine: DockerServer, make_context: MakeContext
) -> None:
    started = engine.containers[next(iter(engine.containers))].started_at
    async with make_context(policy_for(docker=live(engine, dry_run=True))) as ctx:
        dry = await plan(restart(), ctx)
        result = await execute(restart(), ctx, "k1")
    assert (
        dry.description
        == f"restart container web (running, started {started}, image shop:1.0), giving it 10s to stop"
    )
    assert dry.state["started_at"] == started
    assert result.status == "dry_run"
    assert engine.restarts("web") == 0
    assert engine.actions == []


async def test_restart_once_per_key(engine: DockerServer, make_context: MakeContext) -> None:
    async with make_context(policy_for(docker=live(engine))) as ctx:
        done = await execute(restart(), ctx, "k1")
        again = await execute(restart(), ctx, "k1")
        other = await execute(restart(), ctx, "k2")
    assert done.status == "done"
    assert done.description == f"restarted container web (started {done.details['state']['started_at']})"
    assert done.details["state"]["started_at"] != done.before["started_at"]
    assert (again.status, again.repeated, again.before) == ("done", True, done.before)
    assert (other.status, other.repeated) == ("done", False)
    assert engine.restarts("web") == 2
    assert inverse(restart(), done) is None


async def test_a_crash_between_the_note_and_the_restart_restarts_on_the_repeat(
    engine: DockerServer, make_context: MakeContext
) -> None:
    ledger = MemoryLedger()
    async with make_context(policy_for(docker=live(engine)), ledger) as ctx:
        dry = await plan(restart(), ctx)
        await ledger.put("k1", {"action": "docker.restart", "target": "web", "before": dry.state})
        result = await execute(restart(), ctx, "k1")
    assert (result.status, result.repeated) == ("done", False)
    assert engine.restarts("web") == 1


async def test_a_file_ledger_remembers_across_processes(
    engine: DockerServer, make_context: MakeContext, tmp_path: Path
) -> None:
    async with make_context(policy_for(docker=live(engine)), FileLedger(tmp_path / "ledger")) as ctx:
        first = await execute(restart(), ctx, "incident-3/step-2")
    async with make_context(policy_for(docker=live(engine)), FileLedger(tmp_path / "ledger")) as ctx:
        repeat = await execute(restart(), ctx, "incident-3/step-2")
    assert (repeat.status, repeat.repeated, repeat.before) == ("done", True, first.before)
    assert engine.restarts("web") == 1


async def test_refusals_and_failures(engine: DockerServer, make_context: MakeContext) -> None:
    async with make_context(policy_for(docker=live(engine, containers=["web", "ghost"]))) as ctx:
        with pytest.raises(ActionRefused) as refused:
            await execute(restart("db"), ctx, "k1")
        missing = await execute(restart("ghost"), ctx, "k2")
        engine.fail_next(1, 500)
        unavailable = await execute(restart(), ctx, "k3")
    assert (
        refused.value.message
        == "container db is not allowed: add it to actions.docker.containers (now ['web', 'ghost'])"
    )
    assert (missing.status, missing.retryable, missing.details) == ("failed", False, {"status": 404})
    assert missing.description.startswith("docker: inspecting container ghost: HTTP 404")
    assert (unavailable.status, unavailable.retryable) == ("failed", True)
    assert engine.actions == []


async def test_an_engine_that_is_not_there_is_retryable(make_context: MakeContext, tmp_path: Path) -> None:
    section = {
        "enabled": True,
        "dry_run": False,
        "containers": ["web"],
        "connection": {"base_url": f"unix://{tmp_path}/docker.sock"},
    }
    async with make_context(policy_for(docker=section)) as ctx:
        result = await execute(restart(), ctx, "k1")
    assert (result.status, result.retryable) == ("failed", True)
    assert result.description.startswith("docker: ")
