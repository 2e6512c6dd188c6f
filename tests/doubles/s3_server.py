"""A real S3-compatible server on 127.0.0.1: moto in server mode, on a port the OS chose.

    with S3Server() as s3:                 # or the `s3_server` fixture (one per test session)
        bucket = s3.new_bucket()           # a fresh, empty bucket per test
        url = f"s3://{bucket}/evidence"    # with `endpoint_url=s3.endpoint_url`
        s3.keys(bucket)

Code under test finds its credentials the usual way (the AWS environment variables): take the
`aws_credentials` fixture, which sets fake ones and hides any real profile. The helper's own client
uses the same fake credentials explicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import boto3
import pytest
from moto.server import ThreadedMotoServer

__all__ = ["FAKE_CREDENTIALS", "REGION", "S3Server", "aws_credentials", "s3_server"]

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class S3Server:
    def __init__(self) -> None:
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        # port 0: the OS picks a free port while binding, so there is no race for it
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._port = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def client(self) -> Any:
        """A boto3 S3 client of this server, with the fake credentials."""
        if self._client is None:
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
        return self._client

    def new_bucket(self, prefix: str = "vigil") -> str:
        """Create an empty bucket with a fresh name (the server's state is shared by the session)."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in `bucket` under `prefix`, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake AWS credentials in the environment, and no real profile or configuration in the way."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    nowhere = tmp_path_factory.mktemp("aws") / "none"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
