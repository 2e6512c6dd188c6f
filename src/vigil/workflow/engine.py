"""The durable-execution engine behind the workflow: DBOS Transact, on a SQLite database of its own
in the data directory, or on PostgreSQL (in its own `dbos` schema) when Vigil is scaled out.

DBOS keeps each workflow's progress: a step that completed is never run again after a crash (its
recorded result is replayed), and waits (approvals, the verification delay) survive restarts.
Steps run at least once, so every action also carries an idempotency key.

A workflow is started directly on the main event loop by the process that stores its start
first: with several processes on one PostgreSQL, DBOS runs a workflow only in the process whose
start created its row (the others' starts of the same id return it), and recovers a process's
unfinished workflows when that executor starts again. (Workflows were once started through a DBOS
queue: the queue is still served, every `IDLE_QUEUE_POLL_S`, for what was enqueued then; starting
directly spares each alert the enqueue, the wait for the poll and the dequeue. Pasted logs'
investigations are started directly too.) DBOS runs recovered async
workflows on an event loop of its own; the steps reach Vigil's database and clients, which belong
to the main event loop, through `Services.call`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy
from dbos import DBOS, DBOSConfig, Queue, SetWorkflowID

from vigil.actions.ledger import FileLedger
from vigil.bus.client import Bus
from vigil.outbound import Outbound
from vigil.store.db import private_sqlite_files
from vigil.store.models import WorkflowRow
from vigil.store.repo import Store
from vigil.workflow.analysis import Analyst
from vigil.workflow.first_actions import FirstActions
from vigil.workflow.store import WorkflowStore

log = logging.getLogger(__name__)

T = TypeVar("T")
QUEUE_NAME = "vigil-workflows"
WORKFLOW_VERSION = "1"
"""Raise when the workflow's steps change in a way recorded progress cannot be replayed on."""
APPROVAL_TOPIC = "approval"
QUEUE_POLL_S = 2.0
"""How often DBOS's internal queue is polled for `RECOVERY_WINDOW_S` after the engine starts: it
holds the workflows DBOS recovers then (those a crash or stop interrupted)."""
RECOVERY_WINDOW_S = 60.0
IDLE_QUEUE_POLL_S = 30.0
"""How often both queues are polled otherwise: Vigil enqueues nothing on them. The internal queue
only gets what an operator resumes with DBOS's tools, Vigil's own queue only what an older Vigil
enqueued; each poll is a few SQLite transactions of milliseconds of CPU."""
BACKGROUND_JOBS_S = 60.0
"""How often DBOS's background jobs (delayed workflows, timeouts: none in Vigil) run."""
SCHEDULES_POLL_S = 300.0
"""How often DBOS looks for workflow schedules (Vigil has none)."""
POOL_SIZE = 1
"""DBOS's connections to its SQLite database. Its transactions all take the write lock first, so a
second connection only waits in SQLite's busy handler, which sleeps in steps of up to 100 ms,
rather than in the pool's queue, which hands the connection over the moment it is free: with 20,
as DBOS gives itself, 1,000 alerts' workflows opened in 73 s, with 4 in 35 s; with 1 rather than 4,
100 concurrent alerts reached their first action with a p99 about 30% lower."""
SQLITE_WAKE_POLL_S = 10.0
"""How often DBOS looks on SQLite for a message to each waiting workflow (one transaction per
waiting workflow each time; PostgreSQL notifies instead). An approval answered in the process that
runs the workflow wakes it at once (`WorkflowEngine.wake`), so the poll only brings answers given
in another process sharing the SQLite files; at DBOS's 1 s, 1,000 workflows waiting for approval
took 1,000 transactions a second on the one connection every workflow's checkpoints need."""


@dataclass
class Services:
    """What the workflow's steps use, all bound to the main event loop."""

    store: Store
    workflows: WorkflowStore
    http: httpx.AsyncClient
    """For queries (Prometheus, while verifying)."""
    outbound: Outbound
    """For actions' HTTP calls."""
    ledger: FileLedger
    loop: asyncio.AbstractEventLoop
    bus: Bus | None = None
    """For escalations to the project's sinks."""
    analyst: Analyst | None = None
    """The analysis' investigation tools and model."""
    first_actions: FirstActions = field(default_factory=FirstActions)
    """Workflows of this process on their way to their first action."""
    planned: dict[str, WorkflowRow] = field(default_factory=dict)
    """Workflows' rows as their plans were recorded here (`steps.keep_planned`)."""

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the main event loop, from whichever loop DBOS runs the workflow on."""
        if asyncio.get_running_loop() is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


_services: Services | None = None
_started_here: set[asyncio.Task[Any]] = set()
"""Workflows running on the main event loop (started by this process, not recovered)."""


def running_here() -> Callable[[], None]:
    """Note the workflow running in the current task, until the returned callable is called: at
    shutdown, it is cancelled before DBOS stops, as a crash would stop it, so that it does nothing
    after (DBOS records nothing of a cancelled step; the workflow is recovered at the next start)."""
    task = asyncio.current_task()
    if task is None or _services is None or task.get_loop() is not _services.loop:
        return lambda: None
    _started_here.add(task)
    return lambda: _started_here.discard(task)


def services() -> Services:
    if _services is None:
        raise RuntimeError("the workflow engine is not running")
    return _services


def _dbos_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # as DBOS sets up its own SQLite connections (IMMEDIATE transactions serialise the writers) ...
    dbapi_connection.isolation_level = "IMMEDIATE"
    dbapi_connection.execute("PRAGMA busy_timeout=30000")
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    # ... but in WAL mode with NORMAL sync, as Vigil's own database: a checkpoint per step is then
    # one write, not a journal written, synced, applied, synced and deleted; still durable across
    # a crash of the process (what is lost to a power cut is at most the last steps, which run again
    # and whose actions carry idempotency keys)
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _slow_idle_polls(dbos: DBOS) -> None:
    """DBOS's threads poll its database whether or not there is work, each poll a transaction of a
    few milliseconds of CPU. Some, every second, poll for what Vigil hardly or never gives them:
    the internal queue holds workflows recovered after a crash (polled every `QUEUE_POLL_S` while
    they are, for `RECOVERY_WINDOW_S` after launch), the background jobs start delayed workflows and cancel
    timed-out ones, and the schedules are polled every second for a minute after launch (Vigil
    has none of these). These are settings DBOS does not expose: left as they are when a DBOS
    release changes them."""
    from dbos import _scheduler, _workflow_commands

    if getattr(_workflow_commands, "_BACKGROUND_JOBS_INTERVAL_SEC", None) == 1.0:
        _workflow_commands._BACKGROUND_JOBS_INTERVAL_SEC = BACKGROUND_JOBS_S
    if getattr(_scheduler, "_STARTUP_FAST_POLL_DURATION_SEC", None) == 60.0:
        _scheduler._STARTUP_FAST_POLL_DURATION_SEC = 0.0
    _pace_internal_queue(dbos, QUEUE_POLL_S)


def _pace_internal_queue(dbos: DBOS, every_s: float) -> None:
    """Its worker reads the interval before each wait: a change applies after the current one."""
    registry = getattr(dbos, "_registry", None)
    internal = getattr(registry, "get_internal_queue", None)
    if internal is not None:
        queue = internal()
        if isinstance(getattr(queue, "_polling_interval_sec", None), float):
            queue._polling_interval_sec = every_s


def _wake_waiter_here(dbos: DBOS, workflow_id: str, topic: str) -> None:
    """Wake the workflow's `recv` on `topic` if it waits in this process, as DBOS's listener would
    once it saw the message just sent (committed by now). DBOS has no call for this: where a
    release changes what is used here, the listener's poll still brings the message."""
    system_db = getattr(dbos, "_sys_db", None)
    waiter = getattr(system_db, "_waiter", None)
    waiters = getattr(system_db, "notifications_map", None)
    if waiter is None or waiters is None:
        return
    try:
        key, _ = waiter(workflow_id, topic)
        signal = waiters.get(key)
    except Exception:
        return
    if signal is not None:
        signal.set()


def dbos_sqlite_engine(url: str) -> sqlalchemy.Engine:
    """DBOS's system database engine on SQLite; its files 0600, as Vigil's own database's."""
    private_sqlite_files(Path(url.split("///", 1)[-1]))
    engine = sqlalchemy.create_engine(url, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=30)
    sqlalchemy.event.listen(engine, "connect", _dbos_sqlite_pragmas)
    return engine


def dbos_url(database_url: str, data_dir: Path) -> str:
    """DBOS's system database: beside Vigil's own (PostgreSQL), or its own SQLite file."""
    if database_url.startswith("postgresql"):
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return f"sqlite:///{(data_dir / 'workflows.db').resolve()}"


class WorkflowEngine:
    """One per process (DBOS is a process-wide singleton)."""

    @staticmethod
    def available() -> bool:
        """False while another runtime in this process runs the engine (tests run several)."""
        return _services is None

    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        outbound: Outbound,
        *,
        database_url: str,
        data_dir: Path,
        executor_id: str = "local",
        bus: Bus | None = None,
        analyst: Analyst | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._analyst = analyst
        self._executor_id = executor_id
        self._http = http
        self._outbound = outbound
        self._url = dbos_url(database_url, data_dir)
        self._data_dir = data_dir
        self._sqlite_engine: sqlalchemy.Engine | None = None
        self._running = False
        self._queue: Queue | None = None
        self._slow_down: asyncio.TimerHandle | None = None
        self._dbos: DBOS | None = None

    async def start(self) -> None:
        global _services
        from vigil.workflow import flow  # registers the workflow and its steps with DBOS

        _services = Services(
            store=self._store,
            workflows=WorkflowStore(self._store),
            http=self._http,
            outbound=self._outbound,
            ledger=FileLedger(self._data_dir / "actions"),
            loop=asyncio.get_running_loop(),
            bus=self._bus,
            analyst=self._analyst,
        )
        config: DBOSConfig = {
            "name": "vigil",
            "system_database_url": self._url,
            "log_level": "WARNING",
            # one version across restarts and upgrades: DBOS recovers only its own version's work
            "application_version": WORKFLOW_VERSION,
            "executor_id": self._executor_id,
            "scheduler_polling_interval_sec": SCHEDULES_POLL_S,
        }
        if self._url.startswith("sqlite"):
            self._sqlite_engine = dbos_sqlite_engine(self._url)
            config["system_database_engine"] = self._sqlite_engine
            config["notification_listener_polling_interval_sec"] = SQLITE_WAKE_POLL_S
        dbos = self._dbos = DBOS(config=config)
        _slow_idle_polls(dbos)
        await asyncio.to_thread(DBOS.launch)
        # recovery enqueued at launch: polled promptly while it may still wait, rarely after
        self._slow_down = asyncio.get_running_loop().call_later(
            RECOVERY_WINDOW_S, _pace_internal_queue, dbos, IDLE_QUEUE_POLL_S
        )
        self._queue = await DBOS.register_queue_async(QUEUE_NAME, polling_interval_sec=IDLE_QUEUE_POLL_S)
        self._running = True
        self._flow = flow
        log.info("workflow engine started", extra={"system_database": self._url.split("://")[0]})

    async def shutdown(self) -> None:
        global _services
        if not self._running:
            return
        self._running = False
        if self._slow_down is not None:
            self._slow_down.cancel()
        loop = asyncio.get_running_loop()
        # DBOS made its own pool this loop's default executor and shuts it down with itself: the
        # rest of Vigil (still flushing) must already be on a pool of its own by then
        own_pool = ThreadPoolExecutor(thread_name_prefix="vigil")
        loop.set_default_executor(own_pool)
        here = [task for task in _started_here if not task.done()]
        for task in here:
            task.cancel()
        await asyncio.gather(*here, return_exceptions=True)
        try:
            await loop.run_in_executor(own_pool, partial(DBOS.destroy, workflow_completion_timeout_sec=0))
        finally:
            _services = None
            self._dbos = None
            if self._sqlite_engine is not None:
                self._sqlite_engine.dispose()
                self._sqlite_engine = None

    async def start_workflow(
        self, project_id: str, incident_id: str, workflow_id: str, *, new: bool = False
    ) -> str:
        """Start the incident's workflow once, in this process: the same id again, here or in
        another process, is the same workflow, run only by the process that stored it first.
        `new`: not started before, so on its way to its first action from now."""
        if _services is not None and new:
            _services.first_actions.begin(workflow_id)
        with SetWorkflowID(workflow_id):
            await DBOS.start_workflow_async(self._flow.remediate, project_id, incident_id, workflow_id, True)
        return workflow_id

    async def start_investigation(self, workflow_id: str) -> str:
        """Start the investigation of pasted logs whose workflow row `workflow_id` is, directly
        (not through the queue, which is polled rarely)."""
        with SetWorkflowID(workflow_id):
            await DBOS.start_workflow_async(self._flow.investigate, workflow_id)
        return workflow_id

    async def wake(self, workflow_id: str, decision: str) -> None:
        """Tell a waiting workflow that its approval was answered (it also checks by itself)."""
        try:
            await DBOS.send_async(workflow_id, decision, APPROVAL_TOPIC)
        except Exception as exc:  # the answer is stored: the workflow finds it when it next looks
            log.warning("approval wake-up not sent", extra={"workflow": workflow_id, "error": str(exc)})
            return
        if self._dbos is not None:
            _wake_waiter_here(self._dbos, workflow_id, APPROVAL_TOPIC)


class WorkflowWaker:
    """Wakes a workflow waiting for its approval: through this process's engine, or, in a process
    without one (`vigil api` beside `vigil pipeline` replicas), through DBOS's system database."""

    def __init__(self, engine: WorkflowEngine | None, system_database_url: str) -> None:
        self._engine = engine
        self._url = system_database_url
        self._client: Any = None

    async def wake(self, workflow_id: str, decision: str) -> None:
        if self._engine is not None:
            await self._engine.wake(workflow_id, decision)
            return
        try:
            await asyncio.to_thread(self._send, workflow_id, decision)
        except Exception as exc:  # the answer is stored: the workflow finds it when it next looks
            log.warning("approval wake-up not sent", extra={"workflow": workflow_id, "error": str(exc)})

    def _send(self, workflow_id: str, decision: str) -> None:
        if self._client is None:
            from dbos import DBOSClient

            self._client = DBOSClient(system_database_url=self._url)
        self._client.send(workflow_id, decision, APPROVAL_TOPIC)

    def close(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None
