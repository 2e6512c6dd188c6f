"""What actions run with: the project's policy, the clients it names, and the ledger.

The `kubernetes` and `docker` SDKs are blocking, so every call goes to a thread and is bounded by
`policy.call_timeout_s`; the SDK is given the same timeout so the thread ends too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import docker
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from vigil.actions.base import ActionError
from vigil.actions.ledger import ActionLedger, MemoryLedger
from vigil.actions.policy import ActionPolicy, KubernetesConnection
from vigil.outbound import Outbound

__all__ = ["ActionContext"]

T = TypeVar("T")


@dataclass
class ActionContext:
    policy: ActionPolicy
    http: Outbound
    """Shared with the runtime, which owns and closes it."""
    ledger: ActionLedger = field(default_factory=MemoryLedger)
    _kubernetes: kube_client.ApiClient | None = field(default=None, init=False)
    _docker: docker.DockerClient | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def blocking(self, call: Callable[[], T], what: str, *, extra_s: float = 0.0) -> T:
        """`call()` in a thread; a retryable `ActionError` naming `what` if it does not finish in time."""
        limit = self.policy.call_timeout_s + extra_s
        try:
            return await asyncio.wait_for(asyncio.to_thread(call), limit)
        except TimeoutError:
            raise ActionError(f"{what}: no answer within {limit:g}s", retryable=True) from None

    async def kubernetes(self) -> kube_client.ApiClient:
        async with self._lock:
            if self._kubernetes is None:
                connection = self.policy.kubernetes.connection
                self._kubernetes = await self.blocking(
                    lambda: _kubernetes_client(connection), "kubernetes: loading the connection"
                )
            return self._kubernetes

    async def docker(self) -> docker.DockerClient:
        async with self._lock:
            if self._docker is None:
                base_url, timeout = self.policy.docker.connection.base_url, self.policy.call_timeout_s
                self._docker = await self.blocking(
                    lambda: docker.DockerClient(base_url=base_url, version="auto", timeout=int(timeout) or 1),
                    f"docker at {base_url}",
                )
            return self._docker

    async def aclose(self) -> None:
        """Close the clients this context opened; safe twice."""
        kube, engine = self._kubernetes, self._docker
        self._kubernetes = self._docker = None
        if kube is not None:
            await asyncio.to_thread(kube.close)
        if engine is not None:
            await asyncio.to_thread(engine.close)


def _kubernetes_client(connection: KubernetesConnection) -> kube_client.ApiClient:
    if connection.host is not None:
        configuration = kube_client.Configuration(
            host=connection.host,
            ssl_ca_cert=str(connection.ca_file) if connection.ca_file else None,
            verify_ssl=connection.verify_tls,
        )
        if connection.token is not None:
            configuration.api_key = {"BearerToken": connection.token.get_secret_value()}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return kube_client.ApiClient(configuration)
    try:
        if connection.in_cluster:
            configuration = kube_client.Configuration()
            kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return kube_client.ApiClient(configuration)
        loaded: kube_client.ApiClient = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(connection.kubeconfig) if connection.kubeconfig else None,
            context=connection.context,
        )
        return loaded
    except (kube_config.ConfigException, OSError) as exc:
        where = "in-cluster config" if connection.in_cluster else "kubeconfig"
        raise ActionError(f"kubernetes: cannot load the {where}: {exc}", retryable=False) from None
