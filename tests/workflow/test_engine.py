"""The workflow engine's DBOS threads poll promptly only while there can be work for them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dbos import _scheduler, _workflow_commands
from dbos._dbos import _get_dbos_instance

from tests.conftest import make_settings, running
from vigil.workflow import engine


async def test_the_internal_queue_is_polled_promptly_after_start_then_rarely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "RECOVERY_WINDOW_S", 3.0)
    async with running(make_settings(tmp_path / "vigil")):
        dbos = _get_dbos_instance()
        internal = dbos._registry.get_internal_queue()
        # what DBOS recovers at launch is on the internal queue: it is polled promptly
        assert internal._polling_interval_sec == engine.QUEUE_POLL_S
        # Vigil enqueues nothing, on its own queue either: both are polled rarely
        own = await asyncio.to_thread(dbos.retrieve_queue, engine.QUEUE_NAME)
        assert own is not None and own._polling_interval_sec == engine.IDLE_QUEUE_POLL_S
        assert _workflow_commands._BACKGROUND_JOBS_INTERVAL_SEC == engine.BACKGROUND_JOBS_S
        assert _scheduler._STARTUP_FAST_POLL_DURATION_SEC == 0.0
        deadline = asyncio.get_running_loop().time() + 10
        while internal._polling_interval_sec != engine.IDLE_QUEUE_POLL_S:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
