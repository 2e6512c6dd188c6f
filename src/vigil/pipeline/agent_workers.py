"""One delivery worker per pipeline: batches from the bus to the pipeline's agent."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from vigil.agents.registry import Agent, AgentContext, build_agent
from vigil.bus.client import Bus
from vigil.bus.topology import BATCHES_STREAM, agent_consumer_name
from vigil.errors import DeliveryError
from vigil.pipeline.config import ActivePipeline, ConfigCache, agent_consumer
from vigil.pipeline.delivery import DeliveryWorker, WorkerSet
from vigil.pipeline.ledger import BatchLedger
from vigil.store.db import RawJson
from vigil.store.repo import Store

log = logging.getLogger(__name__)


class AgentBatchHandler:
    kind = "batch"

    def __init__(self, pipeline: ActivePipeline, agent: Agent, ledger: BatchLedger) -> None:
        self.project_id = pipeline.project_id
        self.target = pipeline.name
        self._agent = agent
        self._ledger = ledger
        self._bodies: dict[int, bytes] = {}
        """The records' JSON to post, by the message bytes' id, from `prepare` to `deliver`."""
        self._request_ids: dict[int, str] = {}
        """By the message bytes' id, from `prepare` until `succeeded` or `failed`."""

    async def prepare(self, data: bytes, attempt: int) -> int:
        split = split_records(data)
        if split is not None:
            # the records go to the ledger and the agent as the router encoded them, undecoded
            batch, body = split
            records: list[Any] | RawJson = RawJson(body)
            count = int(batch["record_count"])
        else:
            batch = orjson.loads(data)
            records = batch["records"]
            count = len(records)
            body = records_json(data, batch)
        request_id = str(batch["request_id"])
        represented = int(batch.get("represented", count))
        earlier = await self._ledger.record(
            request_id, self.project_id, self.target, records, represented, count
        )
        self._bodies[id(data)] = body  # deliver() comes next, with the same bytes
        self._request_ids[id(data)] = request_id
        # the bus may lose its delivery count in a crash; the ledger keeps it
        return max(attempt, earlier + 1)

    async def deliver(self, data: bytes, attempt: int) -> None:
        body = self._bodies.pop(id(data), None)
        if body is None:
            batch = orjson.loads(data)
            request_id, body = batch["request_id"], records_json(data, batch)
        else:
            request_id = self._request_ids[id(data)]
        await self._agent.send(self.project_id, request_id, body, attempt)

    async def succeeded(self, data: bytes, attempt: int) -> None:
        self._ledger.status(self._request_id(data), "delivered", attempt)

    async def failed(self, data: bytes, attempt: int, error: DeliveryError, final: bool) -> str:
        self._bodies.pop(id(data), None)
        request_id = self._request_id(data)
        self._ledger.status(request_id, "dead" if final else "retrying", attempt, str(error))
        return request_id

    def _request_id(self, data: bytes) -> str:
        request_id = self._request_ids.pop(id(data), None)
        if request_id is None:
            request_id = str(orjson.loads(data)["request_id"])
        return request_id


_RECORDS_KEY = b',"records":'


def split_records(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """A batch message's other keys, and its records' JSON cut from it undecoded, where the router
    wrote the message so (`Batch.payload`: "records" last, after scalars and "record_count"):
    with scalars only before it, the first `,"records":` in the bytes is that key (inside a JSON
    string a quote is escaped). None for any other layout."""
    start = data.find(_RECORDS_KEY)
    if start <= 0 or not data.endswith(b"]}"):
        return None
    try:
        batch = orjson.loads(data[:start] + b"}")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(batch, dict) or "record_count" not in batch or "request_id" not in batch:
        return None
    if any(isinstance(value, dict | list) for value in batch.values()):
        return None
    body = data[start + len(_RECORDS_KEY) : -1]
    return (batch, body) if body.startswith(b"[") else None


def records_json(data: bytes, batch: dict[str, Any]) -> bytes:
    """The JSON of the batch's records, cut from the message when it can be: where "records" is
    its last key and every value before it a string or number, the first `,"records":` in the
    bytes is that key (inside a JSON string a quote is escaped), and its value runs to the final
    `}`. Otherwise encoded again."""
    if data.endswith(b"}") and list(batch)[-1] == "records":
        others = (value for key, value in batch.items() if key != "records")
        if not any(isinstance(value, dict | list) for value in others):
            start = data.find(_RECORDS_KEY)
            if start > 0:
                return data[start + len(_RECORDS_KEY) : -1]
    return orjson.dumps(batch["records"])


class AgentWorkers:
    """Keeps a worker running for every enabled pipeline, following configuration changes."""

    def __init__(
        self, bus: Bus, store: Store, config: ConfigCache, ledger: BatchLedger, agents: AgentContext
    ) -> None:
        self._bus = bus
        self._store = store
        self._config = config
        self._ledger = ledger
        self._agents = agents
        self._workers: WorkerSet[tuple[str, str], ActivePipeline] = WorkerSet(self._worker, self._removed)

    async def start(self) -> None:
        self._config.subscribe(self.reconcile)
        await self.reconcile()

    async def shutdown(self) -> None:
        await self._workers.shutdown()

    async def reconcile(self) -> None:
        await self._workers.reconcile({(p.project_id, p.name): p for p in self._config.all_pipelines()})

    def _worker(self, pipeline: ActivePipeline) -> DeliveryWorker:
        agent = pipeline.spec.agent
        handler = AgentBatchHandler(pipeline, build_agent(agent, self._agents), self._ledger)
        consumer = agent_consumer(self._bus.topology, pipeline)
        return DeliveryWorker(
            self._bus, self._store, consumer, handler, retry=agent.retry, concurrency=agent.concurrency
        )

    async def _removed(self, key: tuple[str, str]) -> None:
        await self._bus.delete_consumer(BATCHES_STREAM, agent_consumer_name(*key))
