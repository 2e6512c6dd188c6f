"""Puts dead-lettered work back on the bus, under its original request id."""

from __future__ import annotations

from vigil.bus.client import Bus
from vigil.errors import Conflict
from vigil.pipeline.config import ConfigCache, agent_consumer, sink_consumer
from vigil.store.models import DeadLetter
from vigil.store.repo import Store


class Replayer:
    def __init__(self, bus: Bus, store: Store, config: ConfigCache) -> None:
        self._bus = bus
        self._store = store
        self._config = config

    async def replay(self, row: DeadLetter) -> None:
        if row.replayed_at is not None:
            raise Conflict(f"dead letter {row.id} was already replayed", details={"id": row.id})
        topology = self._bus.topology
        if row.kind == "batch":
            pipeline = next(
                (p for p in self._config.pipelines.get(row.project_id, ()) if p.name == row.target), None
            )
            if pipeline is None:
                raise Conflict(
                    f"pipeline {row.target!r} no longer exists or is disabled; nothing to replay to"
                )
            await self._bus.ensure_consumer(agent_consumer(topology, pipeline))
        else:
            sink = next((s for s in self._config.sinks.get(row.project_id, ()) if s.id == row.target), None)
            if sink is None:
                raise Conflict(f"sink {row.target!r} no longer exists; nothing to replay to")
            await self._bus.ensure_consumer(sink_consumer(topology, sink))
        await self._bus.publish(row.subject, row.message.encode(), msg_id=f"replay:{row.id}")
        await self._store.mark_replayed(row.id)
