"""A Docker Engine API over TCP with scripted containers: list, inspect, restart, stop, start, logs.

    with DockerServer() as engine:                        # or: async with ...
        engine.add_container("web", image="shop:1.0", labels={"app": "web"})
        engine.add_logs("web", "GET /cart 500", stream="stderr")
        client = docker.DockerClient(base_url=engine.docker_url)   # tcp://127.0.0.1:PORT
        client.containers.get("web").restart()
        assert engine.restarts("web") == 1                # also engine.actions: (action, name)

Speaks API 1.45 (`/version`, `/_ping`, with or without a `/v1.NN` prefix; a newer client version is
refused with 400 as the engine does). Containers are found by id, id prefix or name; a missing one is
404 `No such container: x`. Logs of a container without a TTY come as the multiplexed stream
(8-byte frame headers); `tail`, `since`, `until` and `timestamps` are honoured.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.doubles._rest import Call, HttpError, Response, RestServer, utc_iso

__all__ = ["API_VERSION", "DockerContainer", "DockerServer"]

API_VERSION = "1.45"
MIN_API_VERSION = "1.24"
VERSIONED = r"(?:/v(?P<version>\d+\.\d+))?"
STREAMS = {"stdin": 0, "stdout": 1, "stderr": 2}


@dataclass
class DockerContainer:
    id: str
    name: str
    image: str
    labels: dict[str, str]
    tty: bool = False
    status: str = "running"
    created: float = field(default_factory=time.time)
    started_at: str = field(default_factory=utc_iso)
    finished_at: str = "0001-01-01T00:00:00Z"
    restart_count: int = 0
    logs: list[tuple[float, str, str]] = field(default_factory=list)
    """(unix time, stream, line) in the order written."""

    def inspect(self) -> dict[str, Any]:
        running = self.status == "running"
        state = {
            "Status": self.status,
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": 4242 if running else 0,
            "ExitCode": 0,
            "Error": "",
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }
        config = {
            "Hostname": self.id[:12],
            "Image": self.image,
            "Labels": self.labels,
            "Tty": self.tty,
            "Env": [],
        }
        return {
            "Id": self.id,
            "Created": utc_iso(),
            "Name": f"/{self.name}",
            "Image": f"sha256:{hashlib.sha256(self.image.encode()).hexdigest()}",
            "RestartCount": self.restart_count,
            "State": state,
            "Config": config,
            "HostConfig": {"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
            "NetworkSettings": {"Networks": {}},
            "Mounts": [],
        }

    def summary(self) -> dict[str, Any]:
        shown = "Up 2 minutes" if self.status == "running" else "Exited (0) 1 second ago"
        return {
            "Id": self.id,
            "Names": [f"/{self.name}"],
            "Image": self.image,
            "ImageID": self.inspect()["Image"],
            "Command": "/entrypoint",
            "Created": int(self.created),
            "State": self.status,
            "Status": shown,
            "Labels": self.labels,
            "Ports": [],
            "Mounts": [],
        }


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class DockerServer(RestServer):
    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.containers: dict[str, DockerContainer] = {}
        self.actions: list[tuple[str, str]] = []
        """(restart | stop | start, container name) for every accepted action, in order."""
        self.route("GET", r"/_ping", self._ping)
        self.route("HEAD", r"/_ping", self._ping)
        self.route("GET", VERSIONED + r"/_ping", self._ping)
        self.route("GET", VERSIONED + r"/version", self._version)
        self.route("GET", VERSIONED + r"/containers/json", self._list)
        self.route("GET", VERSIONED + r"/containers/(?P<id>[^/]+)/json", self._inspect)
        self.route("GET", VERSIONED + r"/containers/(?P<id>[^/]+)/logs", self._logs)
        for action in ("restart", "stop", "start"):
            self.route("POST", VERSIONED + rf"/containers/(?P<id>[^/]+)/(?P<action>{action})", self._act)

    @property
    def docker_url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def add_container(
        self,
        name: str,
        *,
        image: str = "nginx:1.27",
        labels: dict[str, str] | None = None,
        status: str = "running",
        tty: bool = False,
    ) -> DockerContainer:
        container_id = hashlib.sha256(f"{name}-{time.time_ns()}".encode()).hexdigest()
        container = DockerContainer(container_id, name, image, dict(labels or {}), tty=tty, status=status)
        with self._cond:
            self.containers[container_id] = container
        return container

    def add_logs(self, name: str, *lines: str, stream: str = "stdout", at: float | None = None) -> None:
        with self._cond:
            container = self._find(name)
            container.logs.extend((at or time.time(), stream, line) for line in lines)

    def restarts(self, name: str) -> int:
        with self._cond:
            return self.actions.count(("restart", name))

    # --- the API -----------------------------------------------------------------------------

    def failure_body(self, status: int) -> bytes:
        return orjson.dumps({"message": f"scripted failure {status}"})

    def not_found(self, method: str, path: str) -> HttpError:
        return HttpError(404, {"message": "page not found"})

    def check_auth(self, call: Call) -> None:
        version = call.params.get("version")
        if version and _version_tuple(version) > _version_tuple(API_VERSION):
            message = f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
            raise HttpError(400, {"message": message})

    def _engine_headers(self) -> dict[str, str]:
        return {
            "api-version": API_VERSION,
            "docker-experimental": "false",
            "ostype": "linux",
            "server": "Docker/26.1.4 (linux)",
        }

    def _ping(self, call: Call) -> Response:
        headers = self._engine_headers() | {
            "content-type": "text/plain; charset=utf-8",
            "cache-control": "no-cache",
        }
        return Response(body=b"" if call.method == "HEAD" else b"OK", headers=headers)

    def _version(self, call: Call) -> Response:
        body = {
            "Platform": {"Name": "Docker Engine - Community"},
            "Version": "26.1.4",
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "de5c9cf",
            "GoVersion": "go1.21.11",
            "Os": "linux",
            "Arch": "amd64",
            "KernelVersion": "6.1.0",
            "BuildTime": "2024-06-05T11:32:19.000000000+00:00",
        }
        return Response(body=body, headers=self._engine_headers())

    def _find(self, ref: str) -> DockerContainer:
        if ref in self.containers:
            return self.containers[ref]
        by_name = [c for c in self.containers.values() if c.name == ref.lstrip("/")]
        by_prefix = [c for c in self.containers.values() if c.id.startswith(ref)]
        found = by_name or by_prefix
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise HttpError(400, {"message": f"multiple IDs found with provided prefix: {ref}"})
        raise HttpError(404, {"message": f"No such container: {ref}"})

    def _list(self, call: Call) -> Any:
        try:
            filters: dict[str, Any] = json.loads(call.arg("filters") or "{}")
        except json.JSONDecodeError:
            raise HttpError(400, {"message": "invalid filter"}) from None
        show_all = call.arg("all") in ("1", "true", "True")
        result = []
        for container in self.containers.values():
            if not show_all and container.status != "running" and "status" not in filters:
                continue
            if all(_filter_matches(container, key, values) for key, values in filters.items()):
                result.append(container.summary())
        return result

    def _inspect(self, call: Call) -> Any:
        return self._find(call.params["id"]).inspect()

    def _act(self, call: Call) -> Response:
        container = self._find(call.params["id"])
        action = call.params["action"]
        if action == "start" and container.status == "running":
            return Response(status=304, body=b"")
        if action == "stop" and container.status != "running":
            return Response(status=304, body=b"")
        if action in ("restart", "start"):
            container.status, container.started_at = "running", utc_iso(millis=True)
        else:
            container.status, container.finished_at = "exited", utc_iso(millis=True)
        self.actions.append((action, container.name))
        return Response(status=204, body=b"")

    def _logs(self, call: Call) -> Response:
        container = self._find(call.params["id"])
        wanted = {name for name in ("stdout", "stderr") if call.arg(name) in ("1", "true", "True")}
        since, until = float(call.arg("since") or 0), float(call.arg("until") or 0)
        entries = [
            e for e in container.logs if e[1] in wanted and e[0] >= since and (not until or e[0] <= until)
        ]
        tail = call.arg("tail") or "all"
        if tail != "all":
            entries = entries[len(entries) - int(tail) :] if int(tail) else []
        stamped = call.arg("timestamps") in ("1", "true", "True")
        chunks = []
        for at, stream, line in entries:
            moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e9):09d}Z"
            data = f"{moment} {line}\n" if stamped else f"{line}\n"
            raw = data.encode()
            chunks.append(raw if container.tty else struct.pack(">BxxxL", STREAMS[stream], len(raw)) + raw)
        kind = (
            "application/vnd.docker.raw-stream"
            if container.tty
            else "application/vnd.docker.multiplexed-stream"
        )
        return Response(body=b"".join(chunks), headers=self._engine_headers() | {"content-type": kind})


def _filter_matches(container: DockerContainer, key: str, values: Any) -> bool:
    options = list(values) if isinstance(values, list | dict) else [values]
    if key == "label":
        return all(
            container.labels.get(o.split("=", 1)[0]) == o.split("=", 1)[1]
            if "=" in o
            else o in container.labels
            for o in options
        )
    if key == "name":
        return any(re.search(o.lstrip("/"), container.name) for o in options)
    if key == "id":
        return any(container.id.startswith(o) for o in options)
    if key == "status":
        return container.status in options
    if key == "ancestor":
        return container.image in options
    raise HttpError(400, {"message": f"invalid filter '{key}'"})
