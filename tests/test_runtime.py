"""Start-up on the embedded defaults: admin token, declarative configuration, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import VigilHandle, make_settings
from tests.logs_factory import PROTOBUF, export_bytes
from vigil.bus.server import ManagedNatsServer
from vigil.config_file import ConfigFileError
from vigil.outbound_policy import OutboundRefused
from vigil.runtime import Runtime
from vigil.settings import BusSettings
from vigil.store.sealing import SecretKeyError

CONFIG = """\
version: 1
projects:
  - name: payments
    api_keys:
      - name: exporters
        key: ${PAYMENTS_KEY}
    pipelines:
      errors:
        filter: {min_severity: ERROR, services: [payment-service]}
        batch: {max_records: 10, max_wait_ms: 500}
        agent: {endpoint: "http://127.0.0.1:9/process"}
    sinks:
      - {type: webhook, url: "http://127.0.0.1:9/hook", secret: "${HOOK_SECRET:-dev-secret}"}
"""


async def test_generated_admin_token_is_kept_across_restarts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", admin_token=None)
    first = Runtime(settings)
    await first.start()
    await first.shutdown()
    assert first.token_generated
    token_file = tmp_path / "data" / "admin-token"
    assert token_file.read_text().strip() == first.admin_token
    assert token_file.stat().st_mode & 0o777 == 0o600

    second = Runtime(settings)
    await second.start()
    try:
        assert not second.token_generated and second.admin_token == first.admin_token
        assert second.api_http is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second.api_http.port}") as api:
            ok = await api.get("/api/v1/projects", headers={"Authorization": f"Bearer {first.admin_token}"})
            assert ok.status_code == 200
    finally:
        await second.shutdown()


async def test_vigil_yaml_is_applied_at_start_and_again_without_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "payments-key-0123456789abcdef"
    monkeypatch.setenv("PAYMENTS_KEY", key)
    config = tmp_path / "vigil.yaml"
    config.write_text(CONFIG)
    settings = make_settings(tmp_path / "data", config_file=config)
    for _ in range(2):
        runtime = Runtime(settings)
        await runtime.start()
        handle = VigilHandle(runtime)
        try:
            [project] = (await handle.api.get("/api/v1/projects")).json()
            assert project["name"] == "payments"
            pid = project["id"]
            assert len((await handle.api.get(f"/api/v1/projects/{pid}/api-keys")).json()) == 1
            [pipeline] = (await handle.api.get(f"/api/v1/projects/{pid}/pipelines")).json()
            assert pipeline["spec"]["filter"]["services"] == ["payment-service"]
            [sink] = (await handle.api.get(f"/api/v1/projects/{pid}/sinks")).json()
            assert sink["spec"]["url"] == "http://127.0.0.1:9/hook"
            sent = await handle.receiver.post(
                "/v1/logs",
                content=export_bytes("payment-service", ["x"]),
                headers={**PROTOBUF, "X-API-Key": key},
            )
            assert sent.status_code == 200
        finally:
            await handle.close()
            await runtime.shutdown()


async def test_invalid_vigil_yaml_stops_start_with_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text(
        CONFIG.replace("max_records: 10", "max_records: 0").replace("${PAYMENTS_KEY}", "k" * 30)
    )
    runtime = Runtime(make_settings(tmp_path / "data", config_file=config))
    with pytest.raises(ConfigFileError) as error:
        await runtime.start()
    await runtime.shutdown()
    assert f"{config}:10:" in str(error.value)
    assert "projects[0].pipelines.errors.batch.max_records" in str(error.value)


async def test_a_vigil_yaml_url_the_outbound_policy_refuses_stops_start(tmp_path: Path) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text(
        CONFIG.replace("http://127.0.0.1:9/hook", "http://169.254.169.254/latest").replace(
            "${PAYMENTS_KEY}", "k" * 30
        )
    )
    runtime = Runtime(make_settings(tmp_path / "data", config_file=config))
    with pytest.raises(OutboundRefused) as error:
        await runtime.start()
    await runtime.shutdown()
    assert str(error.value).startswith("project 'payments', sinks[0].url: 169.254.169.254:80 is a link-local")


async def test_template_ids_survive_a_restart(tmp_path: Path) -> None:
    """Six users teach the miner that the last word is a variable; after a restart a seventh user
    still gets the first template's id, which a fresh miner would not give."""
    settings = make_settings(tmp_path / "data")
    runs = [["alice", "bob", "carol", "dave", "erin", "frank"], ["zed"]]
    ids: list[list[str]] = []
    project_id = key = ""
    for run, users in enumerate(runs):
        runtime = Runtime(settings)
        await runtime.start()
        handle = VigilHandle(runtime)
        try:
            if run == 0:
                project_id, key = await handle.project_with_key()
                spec = {
                    "batch": {"max_records": 10, "max_wait_ms": 50},
                    "agent": {"endpoint": "builtin:error-summary"},
                }
                assert (
                    await handle.api.put(f"/api/v1/projects/{project_id}/pipelines/all", json=spec)
                ).status_code == 200
            for user in users:
                body = export_bytes("svc", [f"session closed for user {user}"])
                sent = await handle.receiver.post(
                    "/v1/logs", content=body, headers={**PROTOBUF, "X-API-Key": key}
                )
                assert sent.status_code == 200
                await asyncio.sleep(0.1)
            expected = sum(len(u) for u in runs[: run + 1])
            for _ in range(100):
                batches = (
                    await handle.api.get(f"/api/v1/projects/{project_id}/batches", params={"records": True})
                ).json()
                records = [r for b in reversed(batches) for r in b["records"]]
                if len(records) >= expected:
                    break
                await asyncio.sleep(0.1)
            ids.append([r["template_id"] for r in records])
        finally:
            await handle.close()
            await runtime.shutdown()
    first = ids[0][0]
    assert ids[0][-1] == first  # merged into the oldest cluster
    assert ids[1][-1] == first


async def test_a_data_dir_left_readable_by_an_earlier_version_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    for name in ("vigil.db", "vigil.db-wal", "vigil.db-shm"):
        (data_dir / name).touch()
        (data_dir / name).chmod(0o644)
    runtime = Runtime(make_settings(data_dir))
    await runtime.start()
    try:
        assert data_dir.stat().st_mode & 0o777 == 0o700
        for name in (
            "vigil.db",
            "vigil.db-wal",
            "vigil.db-shm",
            "secret.key",
            "nats/password",
            "nats/nats.conf",
        ):
            assert (data_dir / name).stat().st_mode & 0o777 == 0o600, name
        assert (data_dir / "nats").stat().st_mode & 0o777 == 0o700
    finally:
        await runtime.shutdown()


async def test_separate_services_refuse_to_start_without_a_shared_secret_key(tmp_path: Path) -> None:
    nats = ManagedNatsServer(tmp_path / "nats-host", BusSettings())
    await nats.start()
    try:
        settings = make_settings(tmp_path / "data", nats_url=nats.url)
        runtime = Runtime(settings, frozenset({"pipeline"}))
        with pytest.raises(SecretKeyError, match="VIGIL_SECRET_KEY"):
            await runtime.start()
        await runtime.shutdown()
        assert not (tmp_path / "data" / "secret.key").exists()
    finally:
        await nats.shutdown()
