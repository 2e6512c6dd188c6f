"""A process killed (SIGKILL) after acting, before its result was recorded: the repeat does not act again."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.actions.conftest import TOKEN, MakeContext
from tests.doubles.docker_server import DockerServer
from tests.doubles.kubernetes_server import KubernetesServer
from vigil.actions import ActionPolicy, ActionResult, ActionStep, FileLedger, execute

CHILD = """
import asyncio, sys, time
from pathlib import Path
from vigil.actions import ActionContext, ActionPolicy, ActionStep, FileLedger, execute
from vigil.outbound import Outbound

async def main() -> None:
    policy = ActionPolicy.model_validate_json(sys.argv[1])
    step = ActionStep.model_validate_json(sys.argv[2])
    async with Outbound() as client:
        ctx = ActionContext(policy=policy, http=client, ledger=FileLedger(Path(sys.argv[4])))
        result = await execute(step, ctx, sys.argv[3])
        print(result.model_dump_json(), flush=True)
        time.sleep(600)  # the workflow has not recorded the result yet

asyncio.run(main())
"""


async def act_then_die(policy: dict[str, Any], step: ActionStep, key: str, ledger: Path) -> ActionResult:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        json.dumps(policy),
        step.model_dump_json(),
        key,
        str(ledger),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
    finally:
        child.kill()
        await child.wait()
    return ActionResult.model_validate_json(line)


async def test_scale_and_docker_restart_survive_a_kill_without_acting_twice(
    k8s: KubernetesServer, engine: DockerServer, make_context: MakeContext, tmp_path: Path
) -> None:
    policy = {
        "kubernetes": {
            "enabled": True,
            "dry_run": False,
            "namespaces": ["shop"],
            "connection": {"host": k8s.base_url, "token": TOKEN},
        },
        "docker": {
            "enabled": True,
            "dry_run": False,
            "containers": ["web"],
            "connection": {"base_url": engine.docker_url},
        },
    }
    scale = ActionStep(
        action="kubernetes.scale", params={"namespace": "shop", "deployment": "checkout", "replicas": 6}
    )
    restart = ActionStep(action="docker.restart", params={"container": "web"})

    scaled = await act_then_die(policy, scale, "incident-1/step-4", tmp_path / "ledger")
    restarted = await act_then_die(policy, restart, "incident-1/step-5", tmp_path / "ledger")
    async with make_context(ActionPolicy.model_validate(policy), FileLedger(tmp_path / "ledger")) as ctx:
        scale_again = await execute(scale, ctx, "incident-1/step-4")
        restart_again = await execute(restart, ctx, "incident-1/step-5")

    assert (scaled.status, scaled.before["replicas"]) == ("done", 3)
    assert (scale_again.status, scale_again.repeated, scale_again.before) == ("done", True, scaled.before)
    assert k8s.count_calls("patch", "deployments", name="checkout") == 1
    assert k8s.get("deployments", "shop", "checkout")["spec"]["replicas"] == 6
    assert restarted.status == "done"
    assert (restart_again.repeated, restart_again.before) == (True, restarted.before)
    assert engine.restarts("web") == 1
