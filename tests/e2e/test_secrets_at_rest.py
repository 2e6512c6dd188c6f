"""Secrets at rest through a real `vigil up`: the data directory and everything in it private, the
agents' headers, webhook secrets and Slack URL encrypted in the database yet delivered, a plain
row left by an earlier version sealed on start, and a key rotated with `vigil secrets rotate`."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.doubles.agent import AgentServer
from tests.doubles.slack_server import SlackServer
from tests.doubles.webhook_receiver import WebhookReceiver
from tests.logs_factory import PROTOBUF, export_bytes
from tests.process import VigilProcess
from vigil.store.sealing import SEALED, generate_key

pytestmark = pytest.mark.slow

AGENT_TOKEN = "Bearer agent-token-5f1d2c8e"
HOOK_SECRET = "hook-secret-9a8b7c6d"
HOOK_HEADER = "team-token-0e1f2a3b"
LEGACY_SECRET = "legacy-hook-secret-4455"


def not_private(data_dir: Path) -> list[str]:
    """Everything under `data_dir` (itself included) that another user could read or enter."""
    paths = [data_dir, *data_dir.rglob("*")]
    return [f"{p} {stat.filemode(p.stat().st_mode)}" for p in paths if p.stat().st_mode & 0o077]


def raw_specs(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [
            row[0]
            for row in connection.execute("SELECT spec FROM pipelines UNION ALL SELECT spec FROM sinks")
        ]


def database_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


async def send_errors(vigil: VigilProcess, key: str, body: str) -> None:
    async with httpx.AsyncClient(base_url=vigil.receiver_url) as receiver:
        sent = await receiver.post(
            "/v1/logs", content=export_bytes("checkout", [body]), headers={**PROTOBUF, "X-API-Key": key}
        )
        assert sent.status_code == 200, sent.text


def rotate(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    vigil = Path(sys.executable).parent / "vigil"
    return subprocess.run(
        [str(vigil), "secrets", "rotate", "--data-dir", str(data_dir)],
        env=env,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_secrets_are_private_encrypted_delivered_migrated_and_rotated(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    db = data_dir / "vigil.db"
    vigil = VigilProcess(data_dir)
    await asyncio.to_thread(vigil.start)
    api = httpx.AsyncClient(
        base_url=f"{vigil.api_url}/api/v1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    try:
        project_id = (await api.post("/projects", json={"name": "payments"})).json()["id"]
        key = (await api.post(f"/projects/{project_id}/api-keys", json={"name": "k"})).json()["key"]
        async with (
            AgentServer(vigil_endpoint=vigil.receiver_url, api_key=key) as agent,
            WebhookReceiver(secret=HOOK_SECRET) as hook,
            WebhookReceiver(secret=LEGACY_SECRET) as legacy_hook,
            SlackServer() as slack,
        ):
            slack_token = slack.path.rsplit("/", 1)[1]
            secrets = [AGENT_TOKEN, HOOK_SECRET, HOOK_HEADER, slack_token, LEGACY_SECRET]
            pipeline = {
                "batch": {"max_records": 10, "max_wait_ms": 100},
                "agent": {"endpoint": agent.url, "headers": {"Authorization": AGENT_TOKEN}},
            }
            assert (
                await api.put(f"/projects/{project_id}/pipelines/errors", json=pipeline)
            ).status_code == 200
            webhook = {
                "type": "webhook",
                "url": hook.url,
                "secret": HOOK_SECRET,
                "headers": {"X-Team": HOOK_HEADER},
            }
            assert (await api.post(f"/projects/{project_id}/sinks", json=webhook)).status_code == 201
            assert (
                await api.post(
                    f"/projects/{project_id}/sinks", json={"type": "slack", "webhook_url": slack.url}
                )
            ).status_code == 201

            # delivered with their secrets...
            await send_errors(vigil, key, "payment 1 failed")
            [batch] = await agent.wait_for(1, timeout_s=30)
            assert batch.header("authorization") == AGENT_TOKEN
            [delivery] = await hook.wait_for(1, timeout_s=30)
            assert delivery.error is None and hook.verify(delivery)
            assert delivery.header("x-team") == HOOK_HEADER
            await slack.wait_for(1, timeout_s=30)
            assert len(slack.messages) == 1

            # ...while every file is private and the database holds none of them in clear
            assert (data_dir / "secret.key").exists()
            for name in (
                "vigil.db",
                "vigil.db-wal",
                "vigil.db-shm",
                "secret.key",
                "nats/password",
                "nats/nats.conf",
            ):
                assert (data_dir / name).stat().st_mode & 0o777 == 0o600, name
            assert data_dir.stat().st_mode & 0o777 == 0o700
            assert not_private(data_dir) == []
            nats_password = (data_dir / "nats" / "password").read_text().strip()
            assert nats_password not in vigil.log.read_text()
            stored = raw_specs(db)
            assert len(stored) == 3 and all(SEALED in spec for spec in stored)
            assert [s for s in secrets if s.encode() in database_bytes(db)] == []

            # a webhook sink as an earlier version stored it: in plain text
            await asyncio.to_thread(vigil.stop)
            plain = {"type": "webhook", "url": legacy_hook.url, "secret": LEGACY_SECRET, "headers": {}}
            with sqlite3.connect(db) as connection:
                connection.execute(
                    "INSERT INTO sinks VALUES ('legacy', ?, 'webhook', NULL, ?, '2026-01-01 00:00:00.000000')",
                    (project_id, json.dumps(plain)),
                )
            assert LEGACY_SECRET.encode() in database_bytes(db)
            await asyncio.to_thread(vigil.start)  # seals it
            assert [s for s in secrets if s.encode() in database_bytes(db)] == []
            await send_errors(vigil, key, "payment 2 failed")
            [old] = await legacy_hook.wait_for(1, timeout_s=30)
            assert old.error is None and legacy_hook.verify(old)
            await hook.wait_for(2, timeout_s=30)

            # rotation: the new key first, the old one after it; rotate; drop the old key
            await asyncio.to_thread(vigil.stop)
            old_key = (data_dir / "secret.key").read_text().strip()
            new_key = generate_key()
            (data_dir / "secret.key").write_text(f"{new_key}\n{old_key}\n")
            done = rotate(data_dir)
            assert done.returncode == 0, done.stderr
            assert "re-encrypted 4 specs" in done.stdout
            (data_dir / "secret.key").write_text(f"{new_key}\n")
            await asyncio.to_thread(vigil.start)
            await send_errors(vigil, key, "payment 3 failed")
            batches = await agent.wait_for(3, timeout_s=30)
            assert {b.header("authorization") for b in batches} == {AGENT_TOKEN}
            await hook.wait_for(3, timeout_s=30)
            await legacy_hook.wait_for(2, timeout_s=30)
            await slack.wait_for(3, timeout_s=30)
            assert [r.error for r in hook.requests + legacy_hook.requests + slack.requests] == [None] * 8

            # the old key alone no longer opens anything: vigil refuses to start with it
            await asyncio.to_thread(vigil.stop)
            (data_dir / "secret.key").write_text(f"{old_key}\n")
            refused = VigilProcess(data_dir)
            try:
                await asyncio.to_thread(refused.start)
                raise AssertionError("vigil started with a key that opens none of the stored secrets")
            except RuntimeError:
                assert "cannot decrypt the secrets of 4 pipelines and sinks" in refused.log.read_text()
            finally:
                refused.stop()
    finally:
        await api.aclose()
        vigil.stop()
