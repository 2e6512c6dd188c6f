"""What a project lets actions touch, and how they reach it.

Every kind is off and dry-run until the project turns it on and names its targets; notify is always
allowed (it only hands a message back). Targets are allowed by glob (`fnmatch`, case-sensitive).
"""

from __future__ import annotations

import urllib.parse
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from vigil.actions.base import ActionKind, ActionRefused

__all__ = [
    "ActionPolicy",
    "DockerConnection",
    "DockerPolicy",
    "HttpPolicy",
    "KubernetesConnection",
    "KubernetesPolicy",
    "shown_url",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Kind(_Strict):
    enabled: bool = False
    """Off: `execute` refuses; `plan` still says what would be done, without reading the system."""
    dry_run: bool = True
    """On: `execute` returns what it would do and touches nothing."""


class KubernetesConnection(_Strict):
    """One of: `host` (+ `token`), `in_cluster`, or a kubeconfig (`kubeconfig`, else kubectl's default)."""

    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    host: str | None = None
    token: SecretStr | None = None
    ca_file: Path | None = None
    verify_tls: bool = True

    @model_validator(mode="after")
    def _one_way_in(self) -> KubernetesConnection:
        ways = [
            self.kubeconfig is not None or self.context is not None,
            self.in_cluster,
            self.host is not None,
        ]
        if sum(ways) > 1:
            raise ValueError("give one of kubeconfig (with context), in_cluster, or host (with token)")
        if self.token is not None and self.host is None:
            raise ValueError("token goes with host")
        return self


class KubernetesPolicy(_Kind):
    namespaces: list[str] = Field(default_factory=list)
    """Globs: every deployment (and its pods) in a matching namespace may be touched."""
    deployments: list[str] = Field(default_factory=list)
    """`namespace/name` globs: these deployments (and their pods) may be touched."""
    connection: KubernetesConnection = Field(default_factory=KubernetesConnection)

    @field_validator("deployments")
    @classmethod
    def _namespaced(cls, globs: list[str]) -> list[str]:
        for glob in globs:
            if glob.count("/") != 1:
                raise ValueError(f"{glob!r} is not namespace/name (globs allowed: shop/*, */checkout)")
        return globs

    def namespace_refusal(self, namespace: str) -> str | None:
        """Why nothing in `namespace` may be touched, before reading anything there."""
        if not self.enabled:
            return _disabled("kubernetes")
        if any(fnmatchcase(namespace, g) for g in self.namespaces) or any(
            fnmatchcase(namespace, g.split("/")[0]) for g in self.deployments
        ):
            return None
        return (
            f"namespace {namespace} is not allowed: add it to actions.kubernetes.namespaces or a "
            f"deployment in it to actions.kubernetes.deployments (now: namespaces {self.namespaces}, "
            f"deployments {self.deployments})"
        )

    def deployment_refusal(self, namespace: str, name: str) -> str | None:
        if not self.enabled:
            return _disabled("kubernetes")
        target = f"{namespace}/{name}"
        if any(fnmatchcase(namespace, g) for g in self.namespaces) or any(
            fnmatchcase(target, g) for g in self.deployments
        ):
            return None
        return (
            f"deployment {target} is not allowed: add it to actions.kubernetes.deployments or its "
            f"namespace to actions.kubernetes.namespaces (now: namespaces {self.namespaces}, "
            f"deployments {self.deployments})"
        )


class DockerConnection(_Strict):
    base_url: str = "unix:///var/run/docker.sock"
    """`unix:///path`, `tcp://host:port` (as `DOCKER_HOST`)."""


class DockerPolicy(_Kind):
    containers: list[str] = Field(default_factory=list)
    """Container name globs."""
    connection: DockerConnection = Field(default_factory=DockerConnection)

    def container_refusal(self, name: str) -> str | None:
        if not self.enabled:
            return _disabled("docker")
        if any(fnmatchcase(name.lstrip("/"), g) for g in self.containers):
            return None
        return f"container {name} is not allowed: add it to actions.docker.containers (now {self.containers})"


class HttpPolicy(_Kind):
    url_prefixes: list[str] = Field(default_factory=list)
    """A URL must start with one of these, up to a path boundary (`https://ops.example.com/hooks/`)."""

    @field_validator("url_prefixes")
    @classmethod
    def _absolute(cls, prefixes: list[str]) -> list[str]:
        for prefix in prefixes:
            parts = urllib.parse.urlsplit(prefix)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{prefix!r} is not an http(s) URL prefix with a host")
        return prefixes

    def url_refusal(self, url: str) -> str | None:
        if not self.enabled:
            return _disabled("http")
        if any(_under(url, prefix) for prefix in self.url_prefixes):
            return None
        return f"URL {shown_url(url)} is not allowed: it is under none of actions.http.url_prefixes (now {self.url_prefixes})"


class ActionPolicy(_Strict):
    """A project's `actions:` section."""

    kubernetes: KubernetesPolicy = Field(default_factory=KubernetesPolicy)
    docker: DockerPolicy = Field(default_factory=DockerPolicy)
    http: HttpPolicy = Field(default_factory=HttpPolicy)
    call_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Bounds each call to a system (one API request; a container restart includes its stop timeout)."""

    def dry_run(self, kind: ActionKind) -> bool:
        return kind != "notify" and getattr(self, kind).dry_run is True

    @staticmethod
    def require(refusal: str | None) -> None:
        if refusal is not None:
            raise ActionRefused(refusal)


def _disabled(kind: str) -> str:
    return f"{kind} actions are off for this project: set actions.{kind}.enabled: true"


def _under(url: str, prefix: str) -> bool:
    segments = urllib.parse.unquote(urllib.parse.urlsplit(url).path).split("/")
    if not url.startswith(prefix) or "." in segments or ".." in segments:
        return False
    rest = url[len(prefix) :]
    return prefix.endswith("/") or rest == "" or rest[0] in "/?#"


def shown_url(url: str) -> str:
    """The URL without its query or fragment, which may hold tokens."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
