"""The Docker Engine double against the official `docker` SDK."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from docker.errors import APIError, NotFound

from tests.doubles.docker_server import API_VERSION, DockerServer


@pytest.fixture
def engine() -> Iterator[DockerServer]:
    with DockerServer() as server:
        server.add_container("web", image="shop:1.0", labels={"app": "web", "tier": "front"})
        server.add_container("worker", image="shop-worker:1.0", labels={"app": "worker"})
        server.add_container("old", image="shop:0.9", status="exited")
        yield server


@pytest.fixture
def sdk(engine: DockerServer) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=engine.docker_url)
    yield client
    client.close()


def test_ping_and_version_negotiation(engine: DockerServer, sdk: docker.DockerClient) -> None:
    assert sdk.ping() is True
    assert sdk.version()["ApiVersion"] == API_VERSION
    assert sdk.api.api_version == API_VERSION
    with pytest.raises(APIError) as too_new:
        docker.DockerClient(base_url=engine.docker_url, version="1.99").containers.list()
    assert "too new" in str(too_new.value)


def test_list_filters_and_get_by_name_or_prefix(engine: DockerServer, sdk: docker.DockerClient) -> None:
    assert sorted(c.name for c in sdk.containers.list()) == ["web", "worker"]
    assert sorted(c.name for c in sdk.containers.list(all=True)) == ["old", "web", "worker"]
    [web] = sdk.containers.list(filters={"label": "app=web"})
    assert web.labels["tier"] == "front"
    assert web.status == "running"
    assert sdk.containers.get(web.id[:12]).name == "web"
    with pytest.raises(NotFound):
        sdk.containers.get("nope")


def test_restart_is_recorded_and_moves_started_at(engine: DockerServer, sdk: docker.DockerClient) -> None:
    web = sdk.containers.get("web")
    started = web.attrs["State"]["StartedAt"]
    web.restart(timeout=1)
    web.reload()
    assert engine.restarts("web") == 1
    assert engine.restarts("worker") == 0
    assert web.attrs["State"]["StartedAt"] != started
    web.stop()
    web.reload()
    assert web.status == "exited"
    assert engine.actions == [("restart", "web"), ("stop", "web")]


def test_logs_come_demultiplexed_with_tail(engine: DockerServer, sdk: docker.DockerClient) -> None:
    engine.add_logs("web", "GET /cart 200", "GET /cart 200")
    engine.add_logs("web", "panic: pool exhausted", stream="stderr")
    web = sdk.containers.get("web")
    assert web.logs() == b"GET /cart 200\nGET /cart 200\npanic: pool exhausted\n"
    assert web.logs(tail=1) == b"panic: pool exhausted\n"
    assert web.logs(stdout=False) == b"panic: pool exhausted\n"
    assert web.logs(timestamps=True, tail=1).split(b" ", 1)[1] == b"panic: pool exhausted\n"
