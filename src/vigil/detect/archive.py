"""The evidence archive: what each signal saw, kept by fingerprint on the local disk or in S3.

Every signal occurrence (one fingerprint in one window) becomes one gzip JSON document at
`<prefix>/<project>/<fingerprint>/<window start, zero-padded seconds>-<hash>.json.gz`: the signal
(kind, severity, service, endpoint or statement, window, value, threshold, title) and its evidence
(window statistics, baseline, query statistics, the failing and slowest requests with their trace
and span ids, sample records). The key depends only on the occurrence and the bytes only on the
signal, so writing the same occurrence twice is harmless.

The backend is chosen by URL through a registry keyed by scheme: a plain path or `file://...`
(`DiskArchive`, the default `<data_dir>/evidence`) and `s3://bucket/prefix` (`S3Archive`, with an
endpoint override for S3-compatible servers; credentials from the standard AWS chain). `sweep(now)`
deletes documents of windows older than the retention. The detector writes through
`vigil.detect.recorder.EvidenceRecorder`; the API reads with `get`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

import orjson

if TYPE_CHECKING:
    from vigil.detect.signals import Signal
    from vigil.settings import Settings

__all__ = [
    "ArchiveConfig",
    "DiskArchive",
    "EvidenceArchive",
    "S3Archive",
    "archive_from_settings",
    "check_url",
    "document_of",
    "key_of",
    "open_archive",
    "register_backend",
]

log = logging.getLogger(__name__)

SUFFIX = ".json.gz"
SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
"""What a project id or fingerprint must look like to become part of a key."""
_SEGMENT = re.compile(SEGMENT)
_NAME = re.compile(r"(\d{12})-[0-9a-f]{12}" + re.escape(SUFFIX))
_VERSION = 1


@dataclass(frozen=True)
class ArchiveConfig:
    retention_s: float = 7 * 86_400.0
    data_dir: Path = Path(".vigil")
    s3_endpoint_url: str | None = None
    s3_region: str | None = None


def _segment(value: str, what: str) -> str:
    if not _SEGMENT.fullmatch(value):
        raise ValueError(f"{what} {value!r} cannot name evidence")
    return value


def key_of(signal: Signal) -> str:
    """`<project>/<fingerprint>/<window start>-<hash>.json.gz`, the same for the same occurrence."""
    project = _segment(signal.project, "project")
    fp = _segment(signal.fingerprint, "fingerprint")
    occurrence = f"{project}\x1f{fp}\x1f{signal.window_start!r}\x1f{signal.window_end!r}"
    digest = hashlib.sha256(occurrence.encode()).hexdigest()[:12]
    return f"{project}/{fp}/{max(0, int(signal.window_start)):012d}-{digest}{SUFFIX}"


def document_of(signal: Signal) -> dict[str, Any]:
    """The archived document of one signal occurrence (JSON-ready)."""
    return {
        "version": _VERSION,
        "key": key_of(signal),
        "signal": signal.model_dump(mode="json", exclude={"evidence"}),
        "evidence": signal.evidence.model_dump(mode="json"),
    }


def _encode(document: dict[str, Any]) -> bytes:
    return gzip.compress(orjson.dumps(document, option=orjson.OPT_SORT_KEYS), mtime=0)


def _decode(data: bytes) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(gzip.decompress(data))
    return document


def _window_start(name: str) -> int | None:
    found = _NAME.fullmatch(name)
    return int(found.group(1)) if found else None


def _newest(names: Iterable[str], limit: int) -> list[str]:
    return sorted((n for n in names if _window_start(n) is not None), reverse=True)[: max(0, limit)]


class EvidenceArchive(ABC):
    """Evidence documents by project and fingerprint. `start()` and `shutdown()` are idempotent."""

    url: str

    def __init__(self, retention_s: float) -> None:
        if retention_s <= 0:
            raise ValueError("evidence retention must be positive")
        self.retention_s = retention_s

    async def start(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    @abstractmethod
    async def put(self, signal: Signal) -> str:
        """Archive one signal occurrence; return its key."""

    @abstractmethod
    async def get(self, project: str, fingerprint: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest `limit` documents of a fingerprint, newest window first."""

    @abstractmethod
    async def sweep(self, now: float) -> int:
        """Delete documents of windows that started more than the retention before `now`; the count."""


class DiskArchive(EvidenceArchive):
    """One file per document under `root`, written to a temporary name and renamed into place."""

    def __init__(self, root: Path, retention_s: float) -> None:
        super().__init__(retention_s)
        self.root = root
        self.url = root.as_uri() if root.is_absolute() else str(root)

    async def put(self, signal: Signal) -> str:
        key = key_of(signal)
        await asyncio.to_thread(self._write, key, _encode(document_of(signal)))
        return key

    def _write(self, key: str, data: bytes) -> None:
        path = self.root / key
        if path.exists():
            return
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        for attempt in (1, 2):  # a sweep may remove an emptied folder just before the write: retry once
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    async def get(self, project: str, fingerprint: str, limit: int = 20) -> list[dict[str, Any]]:
        folder = self.root / _segment(project, "project") / _segment(fingerprint, "fingerprint")
        return await asyncio.to_thread(self._read, folder, limit)

    def _read(self, folder: Path, limit: int) -> list[dict[str, Any]]:
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for name in _newest(names, limit):
            with contextlib.suppress(FileNotFoundError):  # swept meanwhile
                out.append(_decode((folder / name).read_bytes()))
        return out

    async def sweep(self, now: float) -> int:
        return await asyncio.to_thread(self._sweep, now)

    def _sweep(self, now: float) -> int:
        cutoff = now - self.retention_s
        removed = 0
        if not self.root.is_dir():
            return 0
        for folder in (f for project in self.root.iterdir() if project.is_dir() for f in project.iterdir()):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                start = _window_start(entry.name)
                with contextlib.suppress(FileNotFoundError):  # a write renaming its file meanwhile
                    if start is not None and start < cutoff:
                        entry.unlink()
                        removed += 1
                    elif entry.name.endswith(".tmp") and entry.stat().st_mtime < now - 3600:
                        entry.unlink()  # left by a crash mid-write
            with contextlib.suppress(OSError):  # only when empty
                folder.rmdir()
        return removed


class S3Archive(EvidenceArchive):
    """One object per document in `bucket` under `prefix`; blocking boto3 calls run in threads."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        retention_s: float,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        super().__init__(retention_s)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint_url = endpoint_url
        self.region = region
        self._client: Any = None

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=5,
                read_timeout=20,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"} if self.endpoint_url else None,
            )
            session = boto3.session.Session()
            self._client = session.client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
            )
        return self._client

    async def start(self) -> None:
        await asyncio.to_thread(self._s3)

    async def shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    async def put(self, signal: Signal) -> str:
        key = key_of(signal)
        data = _encode(document_of(signal))
        await asyncio.to_thread(
            self._s3().put_object,
            Bucket=self.bucket,
            Key=self._full(key),
            Body=data,
            ContentType="application/gzip",
        )
        return key

    def _names(self, prefix: str) -> list[str]:
        """Keys under `prefix` (which ends with /), every page."""
        out: list[str] = []
        for page in self._s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(str(item["Key"]) for item in page.get("Contents", []))
        return out

    async def get(self, project: str, fingerprint: str, limit: int = 20) -> list[dict[str, Any]]:
        folder = self._full(f"{_segment(project, 'project')}/{_segment(fingerprint, 'fingerprint')}/")
        return await asyncio.to_thread(self._read, folder, limit)

    def _read(self, folder: str, limit: int) -> list[dict[str, Any]]:
        client = self._s3()
        names = [key[len(folder) :] for key in self._names(folder)]
        out: list[dict[str, Any]] = []
        for name in _newest(names, limit):
            try:
                body = client.get_object(Bucket=self.bucket, Key=folder + name)["Body"]
            except client.exceptions.NoSuchKey:  # swept meanwhile
                continue
            with contextlib.closing(body):
                out.append(_decode(body.read()))
        return out

    async def sweep(self, now: float) -> int:
        return await asyncio.to_thread(self._sweep, now)

    def _sweep(self, now: float) -> int:
        cutoff = now - self.retention_s
        root = f"{self.prefix}/" if self.prefix else ""
        stale = []
        for key in self._names(root):
            start = _window_start(key.rsplit("/", 1)[-1])
            if start is not None and start < cutoff:
                stale.append(key)
        for i in range(0, len(stale), 1000):
            chunk = [{"Key": key} for key in stale[i : i + 1000]]
            self._s3().delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
        return len(stale)


# --- the registry of backends, by URL scheme ---------------------------------------------------

Factory = Callable[[SplitResult, ArchiveConfig], EvidenceArchive]
_BACKENDS: dict[str, Factory] = {}


def register_backend(*schemes: str) -> Callable[[Factory], Factory]:
    def add(factory: Factory) -> Factory:
        for scheme in schemes:
            _BACKENDS[scheme] = factory
        return factory

    return add


@register_backend("", "file")
def _disk(parts: SplitResult, config: ArchiveConfig) -> EvidenceArchive:
    if parts.query or parts.fragment:
        raise ValueError("a file evidence URL takes no query or fragment")
    if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
        raise ValueError("a file evidence URL names a local absolute path: file:///var/lib/vigil/evidence")
    path = parts.path if parts.scheme == "file" else parts.geturl()
    if not path:
        raise ValueError("the evidence path is empty")
    return DiskArchive(Path(path), config.retention_s)


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@register_backend("s3")
def _s3(parts: SplitResult, config: ArchiveConfig) -> EvidenceArchive:
    if not _BUCKET.fullmatch(parts.netloc):
        raise ValueError(f"{parts.netloc!r} is not an S3 bucket name; use s3://bucket/prefix")
    if parts.query or parts.fragment:
        raise ValueError("an s3 evidence URL takes no query or fragment; set the endpoint and region apart")
    return S3Archive(
        parts.netloc,
        parts.path,
        config.retention_s,
        endpoint_url=config.s3_endpoint_url,
        region=config.s3_region,
    )


def open_archive(url: str | None, config: ArchiveConfig | None = None) -> EvidenceArchive:
    """The archive at `url` (None: `<data_dir>/evidence` on disk). Raises ValueError on a bad URL."""
    config = config or ArchiveConfig()
    if url is None or not url.strip():
        return DiskArchive(config.data_dir / "evidence", config.retention_s)
    parts = urlsplit(url.strip())
    factory = _BACKENDS.get(parts.scheme.lower())
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(_BACKENDS) if s)
        raise ValueError(
            f"unsupported evidence URL scheme {parts.scheme!r} in {url!r}; use a path or {known}"
        )
    return factory(parts, config)


def check_url(url: str | None) -> None:
    """Raise ValueError when `url` names no archive; builds nothing that does I/O."""
    open_archive(url)


def archive_from_settings(settings: Settings) -> EvidenceArchive:
    d = settings.detect
    config = ArchiveConfig(
        retention_s=d.evidence_retention_s,
        data_dir=settings.data_dir,
        s3_endpoint_url=d.evidence_s3_endpoint_url,
        s3_region=d.evidence_s3_region,
    )
    return open_archive(d.evidence_url, config)
