"""`vigil up` with `VIGIL_PIPELINE_WORKERS=N`: routing and delivery in N processes of their own.

One event loop carries ingest, routing and delivery at about one core. With workers, `vigil up`
keeps the receivers, the API, the sinks, the remediation workflow and the nats-server, and starts
N pipeline services (`python -m vigil pipeline`) on its bus and database; they share the router's
and the agents' durable consumers, so the bus spreads the records messages and the batches over
them, as it does over pipeline replicas. The first worker runs the detector (one detector must see every fact);
the others run with it disabled. A worker that exits is started again after a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

from vigil.bus.server import die_with_parent
from vigil.settings import Settings
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
STOP_GRACE_S = 30.0


class PipelineWorkers:
    def __init__(self, settings: Settings, nats_url: str, count: int) -> None:
        self._settings = settings
        self._nats_url = nats_url
        self._count = count
        self._processes: list[asyncio.subprocess.Process | None] = [None] * count
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    def environment(self, index: int) -> dict[str, str]:
        env = {
            **os.environ,
            "VIGIL_NATS_URL": self._nats_url,
            "VIGIL_DATA_DIR": str(self._settings.data_dir.resolve()),
            "VIGIL_OPS_PORT": "0",  # no two workers on one port; probes go to `vigil up`'s ports
            "VIGIL_PIPELINE_WORKERS": "0",
            "VIGIL_WORKFLOW__ENABLED": "false",  # the workflow runs in `vigil up`, beside the API
        }
        if self._settings.database_url is not None:
            env["VIGIL_DATABASE_URL"] = self._settings.database_url.get_secret_value()
        if index > 0:
            env["VIGIL_DETECT__ENABLED"] = "false"
        return env

    async def start(self) -> None:
        for index in range(self._count):
            await self._spawn(index)
            self._watchers.append(asyncio.create_task(self._watch(index), name=f"pipeline-worker-{index}"))

    async def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        for watcher in self._watchers:
            await cancel_and_wait(watcher)
        running = [p for p in self._processes if p is not None and p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()  # a worker stops like a pipeline service: in-flight work first
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                log.error("a pipeline worker did not stop in time; killed", extra={"pid": process.pid})
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p is not None and p.returncode is None]

    async def _spawn(self, index: int) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vigil",
            "pipeline",
            env=self.environment(index),
            preexec_fn=die_with_parent,  # a killed `vigil up` leaves no worker behind
        )
        self._processes[index] = process
        log.info("pipeline worker started", extra={"worker": index, "pid": process.pid})

    async def _watch(self, index: int) -> None:
        while True:
            process = self._processes[index]
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            log.error("a pipeline worker exited; starting it again", extra={"worker": index, "code": code})
            await asyncio.sleep(RESTART_DELAY_S)
            await self._spawn(index)
