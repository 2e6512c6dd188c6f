"""The durable-execution engine behind the workflow: DBOS Transact, on a SQLite database of its own
in the data directory, or on PostgreSQL (in its own `dbos` schema) when Vigil is scaled out.

DBOS keeps each workflow's progress: a step that completed is never run again after a crash (its
recorded result is replayed), and waits (approvals, the verification delay) survive restarts.
Steps run at least once, so every action also carries an idempotency key.

Workflows are started through a DBOS queue, so that with several processes on one PostgreSQL
each workflow runs in exactly one of them. DBOS runs recovered and queued async workflows on an
event loop of its own; the steps reach Vigil's database and clients, which belong to the main
event loop, through `Services.call`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from dbos import DBOS, DBOSConfig, Queue, SetWorkflowID

from vigil.actions.ledger import FileLedger
from vigil.store.repo import Store
from vigil.workflow.store import WorkflowStore

log = logging.getLogger(__name__)

T = TypeVar("T")
QUEUE_NAME = "vigil-workflows"
APPROVAL_TOPIC = "approval"


@dataclass
class Services:
    """What the workflow's steps use, all bound to the main event loop."""

    store: Store
    workflows: WorkflowStore
    http: httpx.AsyncClient
    ledger: FileLedger
    loop: asyncio.AbstractEventLoop

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the main event loop, from whichever loop DBOS runs the workflow on."""
        if asyncio.get_running_loop() is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


_services: Services | None = None


def services() -> Services:
    if _services is None:
        raise RuntimeError("the workflow engine is not running")
    return _services


def dbos_url(database_url: str, data_dir: Path) -> str:
    """DBOS's system database: beside Vigil's own (PostgreSQL), or its own SQLite file."""
    if database_url.startswith("postgresql"):
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return f"sqlite:///{(data_dir / 'workflows.db').resolve()}"


class WorkflowEngine:
    """One per process (DBOS is a process-wide singleton)."""

    def __init__(self, store: Store, http: httpx.AsyncClient, *, database_url: str, data_dir: Path) -> None:
        self._store = store
        self._http = http
        self._url = dbos_url(database_url, data_dir)
        self._data_dir = data_dir
        self._queue: Queue | None = None
        self._running = False

    async def start(self) -> None:
        global _services
        from vigil.workflow import flow  # registers the workflow and its steps with DBOS

        _services = Services(
            store=self._store,
            workflows=WorkflowStore(self._store),
            http=self._http,
            ledger=FileLedger(self._data_dir / "actions"),
            loop=asyncio.get_running_loop(),
        )
        config: DBOSConfig = {
            "name": "vigil",
            "system_database_url": self._url,
            "run_admin_server": False,
            "log_level": "WARNING",
        }
        self._queue = Queue(QUEUE_NAME, concurrency=None)
        DBOS(config=config)
        await asyncio.to_thread(DBOS.launch)
        self._running = True
        self._flow = flow
        log.info("workflow engine started", extra={"system_database": self._url.split("://")[0]})

    async def shutdown(self) -> None:
        global _services
        if not self._running:
            return
        self._running = False
        await asyncio.to_thread(DBOS.destroy, workflow_completion_timeout_sec=0)
        _services = None

    async def start_workflow(self, project_id: str, incident_id: str, workflow_id: str) -> str:
        """Start the incident's workflow once: the same id again is the same workflow."""
        assert self._queue is not None
        with SetWorkflowID(workflow_id):
            await self._queue.enqueue_async(self._flow.remediate, project_id, incident_id, workflow_id)
        return workflow_id

    async def wake(self, workflow_id: str, decision: str) -> None:
        """Tell a waiting workflow that its approval was answered (it also checks by itself)."""
        try:
            await DBOS.send_async(workflow_id, decision, APPROVAL_TOPIC)
        except Exception as exc:  # the answer is stored: the workflow finds it when it next looks
            log.warning("approval wake-up not sent", extra={"workflow": workflow_id, "error": str(exc)})
