"""Secrets at rest: what the database holds of agents' headers, webhook secrets and Slack URLs
(SQLite and PostgreSQL rows read raw), plain rows left by earlier versions, and key rotation."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.postgres import fresh_database
from vigil.specs import PipelineSpec, SlackSinkSpec, WebhookSinkSpec
from vigil.store.db import create_engine, upgrade
from vigil.store.repo import Store
from vigil.store.sealing import SEALED, SecretBox, SecretKeyError, generate_key, load_secret_box

AGENT_TOKEN = "Bearer agent-token-5f1d2c"
HOOK_SECRET = "hook-secret-9a8b7c"
HOOK_HEADER = "team-token-0e1f2a"
SLACK_URL = "https://hooks.slack.example/services/T000/B000/slack-token-77aa"
SECRETS = (AGENT_TOKEN, HOOK_SECRET, HOOK_HEADER, SLACK_URL)

PIPELINE = PipelineSpec.model_validate(
    {"agent": {"endpoint": "http://127.0.0.1:9/process", "headers": {"Authorization": AGENT_TOKEN}}}
)
WEBHOOK = WebhookSinkSpec.model_validate(
    {
        "type": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "secret": HOOK_SECRET,
        "headers": {"X-Team": HOOK_HEADER},
    }
)
SLACK = SlackSinkSpec.model_validate({"type": "slack", "webhook_url": SLACK_URL})


# --- the box ---------------------------------------------------------------------------------------


def test_a_sealed_value_opens_with_its_key_only() -> None:
    box = SecretBox([generate_key()])
    sealed = box.seal("s3cret")
    assert set(sealed) == {SEALED} and "s3cret" not in json.dumps(sealed)
    assert box.open(sealed) == "s3cret"
    assert box.open("plain from an older version") == "plain from an older version"
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        SecretBox([generate_key()]).open(sealed)


def test_keys_in_either_base64_alphabet_and_clear_errors_for_bad_ones() -> None:
    raw = bytes(range(251, 256)) * 6 + b"\xfb\xff"  # encodes with + and / in standard base64
    standard, urlsafe = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    assert "+" in standard or "/" in standard
    assert SecretBox([urlsafe]).open(SecretBox([standard]).seal("x")) == "x"
    with pytest.raises(SecretKeyError, match="32 bytes"):
        SecretBox([base64.b64encode(b"short").decode()])
    with pytest.raises(SecretKeyError, match="not base64"):
        SecretBox(["not base64 at all!"])


def test_the_key_file_is_generated_private_only_when_allowed(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match="VIGIL_SECRET_KEY"):
        load_secret_box(None, None, tmp_path, create=False)
    box, path = load_secret_box(None, None, tmp_path, create=True)
    assert path == tmp_path / "secret.key" and path.stat().st_mode & 0o777 == 0o600
    again, _ = load_secret_box(None, None, tmp_path, create=True)
    assert again.open(box.seal("x")) == "x"
    configured, source = load_secret_box(
        f"{generate_key()}, {path.read_text().strip()}", None, tmp_path, create=False
    )
    assert source is None and configured.open(box.seal("x")) == "x"


# --- the store, on SQLite --------------------------------------------------------------------------


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    await upgrade(url)
    return url


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    store = Store(create_engine(sqlite_url), SecretBox([generate_key()]))
    yield store
    await store.close()


def raw_specs(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT spec FROM pipelines UNION ALL SELECT spec FROM sinks").fetchall()
    return [row[0] for row in rows]


def file_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


async def test_secrets_are_stored_encrypted_and_read_back_in_clear(store: Store, tmp_path: Path) -> None:
    project = await store.create_project("payments")
    await store.put_pipeline(project.id, "errors", PIPELINE)
    webhook = await store.add_sink(project.id, WEBHOOK)
    slack = await store.add_sink(project.id, SLACK)

    stored = raw_specs(tmp_path / "vigil.db")
    assert len(stored) == 3
    assert not [s for s in SECRETS if any(s in row for row in stored)]
    assert all(SEALED in row for row in stored)
    assert not [s for s in SECRETS if s.encode() in file_bytes(tmp_path / "vigil.db")]

    pipeline = await store.get_pipeline(project.id, "errors")
    assert (
        PipelineSpec.model_validate(pipeline.spec).agent.headers["Authorization"].get_secret_value()
        == AGENT_TOKEN
    )
    [listed] = await store.list_pipelines(project.id)
    assert listed.spec["agent"]["headers"] == {"Authorization": AGENT_TOKEN}
    assert (await store.get_sink(project.id, webhook.id)).spec["secret"] == HOOK_SECRET
    sinks = {row.id: row.spec for row in await store.list_sinks(project.id)}
    assert sinks[webhook.id]["headers"] == {"X-Team": HOOK_HEADER}
    assert sinks[slack.id]["webhook_url"] == SLACK_URL


async def test_plain_rows_of_an_earlier_version_keep_working_and_get_encrypted(
    store: Store, tmp_path: Path
) -> None:
    db = tmp_path / "vigil.db"
    project = await store.create_project("payments")
    plain_pipeline = json.dumps(
        {"agent": {"endpoint": "http://127.0.0.1:9/process", "headers": {"Authorization": AGENT_TOKEN}}}
    )
    plain_sink = json.dumps({"type": "slack", "webhook_url": SLACK_URL})
    with sqlite3.connect(db) as connection:  # as an earlier version wrote them
        connection.execute(
            "INSERT INTO pipelines VALUES (?, 'errors', ?, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')",
            (project.id, plain_pipeline),
        )
        connection.execute(
            "INSERT INTO sinks VALUES ('legacy-sink', ?, 'slack', NULL, ?, '2026-01-01 00:00:00.000000')",
            (project.id, plain_sink),
        )
    assert AGENT_TOKEN.encode() in file_bytes(db)

    pipeline = await store.get_pipeline(project.id, "errors")
    assert pipeline.spec["agent"]["headers"] == {"Authorization": AGENT_TOKEN}

    report = await store.seal_secrets()
    assert (report.sealed, report.unreadable) == (2, [])
    assert not [s for s in SECRETS if any(s in row for row in raw_specs(db))]
    # secure_delete and the WAL checkpoint leave no copy of the plain text in the files either
    assert not [s for s in SECRETS if s.encode() in file_bytes(db)]
    assert (await store.get_pipeline(project.id, "errors")).spec["agent"]["headers"] == {
        "Authorization": AGENT_TOKEN
    }
    assert (await store.get_sink(project.id, "legacy-sink")).spec["webhook_url"] == SLACK_URL
    assert (await store.seal_secrets()).sealed == 0


async def test_rotation_re_encrypts_with_the_new_key_and_the_old_one_can_go(
    sqlite_url: str, tmp_path: Path
) -> None:
    old, new = generate_key(), generate_key()
    before = Store(create_engine(sqlite_url), SecretBox([old]))
    project = await before.create_project("payments")
    await before.put_pipeline(project.id, "errors", PIPELINE)
    sink = await before.add_sink(project.id, WEBHOOK)
    await before.close()

    with_new_only = Store(create_engine(sqlite_url), SecretBox([new]))
    report = await with_new_only.seal_secrets()
    assert report.sealed == 0 and len(report.unreadable) == 2  # a replaced key is refused, not guessed
    await with_new_only.close()

    rotating = Store(create_engine(sqlite_url), SecretBox([new, old]))
    assert (await rotating.seal_secrets()).sealed == 0  # start-up only encrypts plain text
    report = await rotating.seal_secrets(rotate=True)
    assert (report.sealed, report.unreadable) == (2, [])
    assert (await rotating.seal_secrets(rotate=True)).sealed == 0
    await rotating.close()

    after = Store(create_engine(sqlite_url), SecretBox([new]))
    assert (await after.seal_secrets()).unreadable == []
    assert (await after.get_sink(project.id, sink.id)).spec["secret"] == HOOK_SECRET
    assert (await after.get_pipeline(project.id, "errors")).spec["agent"]["headers"] == {
        "Authorization": AGENT_TOKEN
    }
    await after.close()
    with pytest.raises(SecretKeyError):
        only_old = Store(create_engine(sqlite_url), SecretBox([old]))
        try:
            await only_old.get_sink(project.id, sink.id)
        finally:
            await only_old.close()


# --- the store, on PostgreSQL ----------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


async def test_postgres_rows_hold_no_secret_in_clear(postgres_url: str) -> None:
    await upgrade(postgres_url)
    box = SecretBox([generate_key()])
    store = Store(create_engine(postgres_url), box)
    try:
        project = await store.create_project("payments")
        await store.put_pipeline(project.id, "errors", PIPELINE)
        await store.add_sink(project.id, WEBHOOK)
        await store.add_sink(project.id, SLACK)
        assert (await store.get_pipeline(project.id, "errors")).spec["agent"]["headers"] == {
            "Authorization": AGENT_TOKEN
        }
    finally:
        await store.close()
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await connection.fetch(
            "SELECT spec::text AS spec FROM pipelines UNION ALL SELECT spec::text FROM sinks"
        )
        stored = [row["spec"] for row in rows]
        assert len(stored) == 3 and all(SEALED in row for row in stored)
        assert not [s for s in SECRETS if any(s in row for row in stored)]

        # a row as an earlier version wrote it: read as it is, sealed by the start-up pass
        await connection.execute(
            "INSERT INTO sinks VALUES ('legacy', $1, 'slack', NULL, $2, now())",
            project.id,
            json.dumps({"type": "slack", "webhook_url": SLACK_URL}),
        )
        store = Store(create_engine(postgres_url), box)
        try:
            assert (await store.get_sink(project.id, "legacy")).spec["webhook_url"] == SLACK_URL
            assert (await store.seal_secrets()).sealed == 1
            assert (await store.get_sink(project.id, "legacy")).spec["webhook_url"] == SLACK_URL
        finally:
            await store.close()
        legacy = await connection.fetchval("SELECT spec::text FROM sinks WHERE id = 'legacy'")
        assert SEALED in legacy and SLACK_URL not in legacy
    finally:
        await connection.close()
