"""The live view of every project's pipelines and sinks, refreshed when the API changes them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from vigil.bus.topology import ConsumerSpec, Topology
from vigil.pipeline.filters import RecordFilter
from vigil.pipeline.redact import Redactor
from vigil.specs import PipelineSpec, SinkSpec
from vigil.store.repo import Store
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_SINK_ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSpec)


@dataclass(frozen=True)
class ActivePipeline:
    project_id: str
    name: str
    spec: PipelineSpec
    filter: RecordFilter = field(compare=False)
    redactor: Redactor | None = field(compare=False, default=None)

    @classmethod
    def build(cls, project_id: str, name: str, spec: PipelineSpec) -> ActivePipeline:
        redactor = Redactor(spec.redact) if spec.redact.enabled else None
        return cls(project_id, name, spec, RecordFilter(spec.filter), redactor)


@dataclass(frozen=True)
class ActiveSink:
    project_id: str
    id: str
    spec: Any


def agent_consumer(topology: Topology, pipeline: ActivePipeline) -> ConsumerSpec:
    agent = pipeline.spec.agent
    return topology.agent_consumer(
        pipeline.project_id,
        pipeline.name,
        ack_wait_s=agent.timeout_s + topology.settings.ack_margin_s,
        max_pending=max(agent.concurrency * 4, 16),
        max_attempts=agent.retry.max_attempts,
    )


def sink_consumer(topology: Topology, sink: ActiveSink) -> ConsumerSpec:
    return topology.sink_consumer(
        sink.project_id,
        sink.id,
        ack_wait_s=sink.spec.timeout_s + topology.settings.ack_margin_s,
        max_attempts=sink.spec.retry.max_attempts,
    )


Listener = Callable[[], Awaitable[None]]


class ConfigCache:
    """Reloads from the store on a change notice and every `refresh_s` as a safety net."""

    def __init__(self, store: Store, refresh_s: float = 30.0) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self.pipelines: dict[str, list[ActivePipeline]] = {}
        self.sinks: dict[str, list[ActiveSink]] = {}
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._periodic(), name="config-refresh")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def reload(self) -> None:
        async with self._lock:
            pipelines: dict[str, list[ActivePipeline]] = {}
            for row in await self._store.list_pipelines():
                try:
                    spec = PipelineSpec.model_validate(row.spec)
                except ValueError:
                    log.exception("stored pipeline is invalid; skipped", extra={"pipeline": row.name})
                    continue
                if spec.enabled:
                    active = ActivePipeline.build(row.project_id, row.name, spec)
                    pipelines.setdefault(row.project_id, []).append(active)
            sinks: dict[str, list[ActiveSink]] = {}
            for sink in await self._store.list_sinks():
                try:
                    sink_spec = _SINK_ADAPTER.validate_python(sink.spec)
                except ValueError:
                    # Saved under older, looser rules: the others keep running.
                    log.exception("stored sink is invalid; skipped", extra={"sink": sink.id})
                    continue
                sinks.setdefault(sink.project_id, []).append(ActiveSink(sink.project_id, sink.id, sink_spec))
            self.pipelines, self.sinks = pipelines, sinks
        for listener in self._listeners:
            try:
                await listener()
            except Exception:
                log.exception("config listener failed")

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.reload()
            except Exception:
                log.exception("config refresh failed")

    def all_pipelines(self) -> list[ActivePipeline]:
        return [p for group in self.pipelines.values() for p in group]

    def all_sinks(self) -> list[ActiveSink]:
        return [s for group in self.sinks.values() for s in group]
