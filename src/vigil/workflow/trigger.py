"""Which incidents enter the workflow, and starting them: at once when an alert opens one, and by a
sweep every few seconds for the rest (the detector's incidents, and any start a crash prevented).
An alert stored by a process without the engine (`vigil api` beside `vigil pipeline` replicas)
wakes the sweep of every process with one, over the bus. Starting is idempotent: an incident's
workflow id is fixed by the incident and its reopenings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy import select

from vigil.bus.client import Bus
from vigil.bus.topology import WORKFLOW_START_SUBJECT
from vigil.detect.signals import Severity
from vigil.store.models import IncidentRow, WorkflowRow
from vigil.store.repo import Store
from vigil.tasks import cancel_and_wait
from vigil.workflow.engine import WorkflowEngine
from vigil.workflow.policy import WorkflowPolicy
from vigil.workflow.proposals import PROPOSED
from vigil.workflow.store import WorkflowStore

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 2.0


def workflow_id_for(incident: dict[str, Any]) -> str:
    return f"wf-{incident['id']}-{int(incident.get('reopened') or 0)}"


def qualifies(incident: dict[str, Any], policy: WorkflowPolicy) -> bool:
    if incident.get("status") != "open":
        return False
    if incident.get("kind") == "alert":
        return policy.alerts
    detected = policy.detected
    if not detected.enabled:
        return False
    if Severity(incident.get("severity", "info")).rank < detected.min_severity.rank:
        return False
    kinds = {str(s.get("kind")) for s in incident.get("signals") or []}
    return not detected.signal_kinds or bool(kinds & set(detected.signal_kinds))


async def announce_incidents(bus: Bus, project_id: str, incidents: list[dict[str, Any]]) -> None:
    """For a process without the engine: wake the sweeps of those with one."""
    await bus.nc.publish(WORKFLOW_START_SUBJECT, project_id.encode())


class WorkflowTrigger:
    def __init__(
        self, store: Store, engine: WorkflowEngine, *, bus: Bus | None = None, sweep_s: float = SWEEP_EVERY_S
    ) -> None:
        self._store = store
        self._engine = engine
        self._bus = bus
        self._sweep_s = sweep_s
        self._workflows = WorkflowStore(store)
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._subscription: Subscription | None = None
        self._started: set[str] = set()
        """Workflows this process started, of incidents still open."""

    async def start(self) -> None:
        if self._bus is not None:
            self._subscription = await self._bus.nc.subscribe(WORKFLOW_START_SUBJECT, cb=self._wake)
        self._task = asyncio.create_task(self._sweep_forever(), name="workflow-trigger")

    async def shutdown(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):  # the bus may be gone already
                await subscription.unsubscribe()
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _wake(self, _: Msg) -> None:
        self._woken.set()

    async def incident_changed(self, project_id: str, incidents: list[dict[str, Any]]) -> None:
        """Start the workflows of these incidents (as stored) that qualify (called after an alert
        is stored)."""
        policy = await self._workflows.policy(project_id)
        for incident in incidents:
            if qualifies(incident, policy):
                await self._start(project_id, incident["id"], workflow_id_for(incident))

    async def start_proposal(self, project_id: str, incident_id: str, workflow_id: str) -> None:
        """Start a stored proposal's workflow (again is harmless: the same id is the same one)."""
        await self._engine.start_workflow(project_id, incident_id, workflow_id)

    async def sweep(self) -> int:
        """Start the workflows of open incidents that have none yet. Only ids and reopen counts
        are read for all of them; a body only for an incident without its workflow's row (and not
        started by this process already: until its first step, a workflow has no row)."""
        async with self._store.session() as s:
            found = (
                await s.execute(
                    select(IncidentRow.id, IncidentRow.body["reopened"].as_integer()).where(
                        IncidentRow.status == "open"
                    )
                )
            ).all()
            wanted = {incident: workflow_id_for({"id": incident, "reopened": n}) for incident, n in found}
            workflows = (
                await s.execute(
                    select(
                        WorkflowRow.id, WorkflowRow.project_id, WorkflowRow.incident_id, WorkflowRow.status
                    ).where(WorkflowRow.incident_id.in_(list(wanted)))
                )
            ).all()
            started = {workflow.id for workflow in workflows}
            self._started &= set(wanted.values())  # what was closed is forgotten
            missing = [
                incident
                for incident, workflow_id in wanted.items()
                if workflow_id not in started and workflow_id not in self._started
            ]
            rows = (
                (await s.scalars(select(IncidentRow).where(IncidentRow.id.in_(missing)))).all()
                if missing
                else []
            )
        count = 0
        for workflow in workflows:
            if workflow.status == PROPOSED:  # proposals wait for the engine wherever it runs
                await self.start_proposal(workflow.project_id, workflow.incident_id, workflow.id)
                count += 1
        policies: dict[str, WorkflowPolicy] = {}
        for row in rows:
            policy = policies.get(row.project_id) or await self._workflows.policy(row.project_id)
            policies[row.project_id] = policy
            if row.status == "open" and qualifies(row.body, policy):
                await self._start(row.project_id, row.id, workflow_id_for(row.body))
                count += 1
        return count

    async def _start(self, project_id: str, incident_id: str, workflow_id: str) -> None:
        new = workflow_id not in self._started
        await self._engine.start_workflow(project_id, incident_id, workflow_id, new=new)
        self._started.add(workflow_id)

    async def _sweep_forever(self) -> None:
        while True:
            self._woken.clear()  # what wakes it from here on is seen by the sweep below or the next
            try:
                await self.sweep()
            except Exception:
                log.exception("workflow sweep failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self._sweep_s)
