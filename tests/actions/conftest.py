"""Actions against the local Kubernetes and Docker doubles, with a policy built per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from tests.doubles.docker_server import DockerServer
from tests.doubles.kubernetes_server import KubernetesServer
from vigil.actions import ActionContext, ActionLedger, ActionPolicy, MemoryLedger
from vigil.outbound import Outbound

TOKEN = "kube-token-0123456789"
WRITES = ("patch", "update", "delete")

MakeContext = Callable[..., AbstractAsyncContextManager[ActionContext]]


@pytest.fixture
def k8s() -> Iterator[KubernetesServer]:
    with KubernetesServer(token=TOKEN) as server:
        server.add_deployment("checkout", "shop", image="shop:1.0", replicas=3)
        server.add_deployment("cart", "shop", image="cart:1.0", replicas=1)
        yield server


@pytest.fixture
def engine() -> Iterator[DockerServer]:
    with DockerServer() as server:
        server.add_container("web", image="shop:1.0")
        server.add_container("db", image="postgres:16")
        yield server


def kube_writes(k8s: KubernetesServer) -> int:
    return sum(1 for c in k8s.calls if c.verb in WRITES)


def policy_for(k8s: KubernetesServer | None = None, **sections: Any) -> ActionPolicy:
    """A policy with the given sections; the Kubernetes section reaches `k8s` with its token."""
    data: dict[str, Any] = dict(sections)
    if k8s is not None:
        kube = dict(data.get("kubernetes", {}))
        kube.setdefault("connection", {"host": k8s.base_url, "token": TOKEN})
        data["kubernetes"] = kube
    return ActionPolicy.model_validate(data)


@pytest.fixture
async def make_context() -> AsyncIterator[MakeContext]:
    @asynccontextmanager
    async def make(policy: ActionPolicy, ledger: ActionLedger | None = None) -> AsyncIterator[ActionContext]:
        async with Outbound() as client:
            ctx = ActionContext(policy=policy, http=client, ledger=ledger or MemoryLedger())
            try:
                yield ctx
            finally:
                await ctx.aclose()

    yield make
