"""Pipeline router rate: how fast Vigil's router drains a backlog of records through filter + batch.

Run in-process (Vigil's own bus client, store, config cache and `Router` on one asyncio loop,
with a managed nats-server), so that the number is the router's alone, without HTTP or load
generation sharing the process:

1. the records stream gets `--messages` unique 1,000-record exports (published the way the
   receiver publishes them) while no router runs; the router's durable consumer exists, so
   interest retention keeps them;
2. a project with one pipeline (the filter under test; max_records 100, max_wait_ms 500) is
   configured;
3. the router starts, and the clock runs until the router's consumer has nothing pending and
   nothing unacknowledged.

What is timed is everything the router does per input record: protobuf parse, resource and
record filters on the protobuf objects, flattening and template mining of matching records,
batching, JSON encoding of each batch, its durable publication on the batches stream (acknowledged by JetStream), and
the acknowledgement of the input messages. Delivery of batches to agents is not included (it is
done by other workers, from the batches stream).

Usage::

    .venv/bin/python bench/pipeline_rate.py [--messages 300] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loadgen import BodySource
from output import print_json
from procstat import CpuWindow, peak_rss_bytes
from prometheus_client import REGISTRY

from vigil.bus.client import Bus
from vigil.bus.server import ManagedNatsServer
from vigil.bus.topology import BATCHES_STREAM, RECORDS_STREAM, agent_consumer_name, records_subject
from vigil.pipeline.config import ConfigCache
from vigil.pipeline.router import Router
from vigil.pipeline.template_store import TemplateStore
from vigil.receivers.ingest import RECEIVED_HEADER
from vigil.settings import BusSettings
from vigil.specs import PipelineSpec
from vigil.store.db import create_engine, upgrade
from vigil.store.repo import Store
from vigil.store.sealing import SecretBox

CASES: list[tuple[str, str, dict[str, Any], int]] = [
    # label, pipeline name, filter, backlog size relative to --messages (cheap cases get more)
    ("5% (services: [svc-1], resource-level)", "svc1", {"services": ["svc-1"]}, 4),
    ("5% (min_severity: ERROR, record-level)", "errors", {"min_severity": "ERROR"}, 4),
    (
        "5% (body regex, RE2, record-level)",
        "body-regex",
        {"body": {"regex": "failed|exhausted|returned 503 for"}},
        4,
    ),
    ("100% (empty filter)", "all", {}, 1),
]


@dataclass
class CaseResult:
    case: str
    filter: dict[str, Any]
    input_records: int
    matched_records: int
    batches: int
    seconds: float
    records_per_s: float
    matched_per_s: float
    cores_used: dict[str, float]
    loop_stall_max_ms: float
    """Longest time the event loop was held (a 5 ms ticker's worst overshoot) while the router ran:
    in `vigil up` the receiver and the API share this loop and cannot answer meanwhile."""
    pipeline_defaults: dict[str, Any]
    """The pipeline's settings other than filter and batch, as Vigil's defaults made them."""


async def publish_backlog(bus: Bus, project_id: str, source: BodySource, messages: int) -> int:
    subject = records_subject(project_id)
    records = 0
    pending: list[tuple[str, bytes, str, dict[str, str] | None]] = []
    for _ in range(messages):
        body, count = source.next()
        records += count
        msg_id = hashlib.blake2b(project_id.encode() + body, digest_size=16).hexdigest()
        pending.append((subject, body, msg_id, {RECEIVED_HEADER: str(time.time_ns())}))
        if len(pending) == 50:
            await bus.publish_many(pending)
            pending = []
    if pending:
        await bus.publish_many(pending)
    return records


async def loop_ticker(stalls: list[float], period_s: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(period_s)
        stalls.append(loop.time() - before - period_s)


async def drained(bus: Bus, consumer: str, poll_s: float = 0.05) -> None:
    while True:
        info = await bus.js.consumer_info(RECORDS_STREAM, consumer)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        await asyncio.sleep(poll_s)


async def run_case(
    bus: Bus, store: Store, nats_pid: int, label: str, name: str, spec: dict[str, Any], messages: int
) -> CaseResult:
    project = await store.create_project(f"bench-{name}")
    pipeline = PipelineSpec.model_validate(
        {
            "filter": spec,
            "batch": {"max_records": 100, "max_wait_ms": 500},
            "agent": {"endpoint": "http://127.0.0.1:9/process"},
        }
    )
    await store.put_pipeline(project.id, name, pipeline)
    config = ConfigCache(store)
    await config.start()
    records = await publish_backlog(bus, project.id, BodySource(8, prefix=len(name)), messages)
    templates = TemplateStore(store)
    await templates.start()
    router = Router(bus, config, templates)
    cpu = CpuWindow({"router process": os.getpid(), "nats-server": nats_pid})
    stalls: list[float] = []
    ticker = asyncio.create_task(loop_ticker(stalls))
    started = time.perf_counter()
    cpu.start()
    await router.start()
    await drained(bus, bus.topology.router_consumer().name)
    seconds = time.perf_counter() - started
    cpu.stop()
    ticker.cancel()
    await router.shutdown()
    await templates.shutdown()
    await config.shutdown()
    batches_consumer = agent_consumer_name(project.id, name)
    info = await bus.js.consumer_info(BATCHES_STREAM, batches_consumer)
    batches = info.num_pending
    matched = int(REGISTRY.get_sample_value("vigil_records_matched_total", {"pipeline": name}) or 0)
    await bus.delete_consumer(BATCHES_STREAM, batches_consumer)
    return CaseResult(
        case=label,
        filter=spec,
        input_records=records,
        matched_records=matched,
        batches=batches,
        seconds=round(seconds, 3),
        records_per_s=records / seconds,
        matched_per_s=matched / seconds,
        cores_used=cpu.cores_used,
        loop_stall_max_ms=max(stalls, default=0.0) * 1000,
        pipeline_defaults=pipeline.model_dump(mode="json", exclude={"filter", "batch", "agent"}),
    )


async def fresh_case(label: str, name: str, spec: dict[str, Any], messages: int) -> CaseResult:
    """Each case gets its own nats-server and database: nothing carries over between cases."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-router-") as tmp:
        data_dir = Path(tmp)
        settings = BusSettings(records_max_bytes=4 * 1024**3, batches_max_bytes=4 * 1024**3)
        server = ManagedNatsServer(data_dir, settings)
        await server.start()
        bus = Bus(server.url, settings)
        await bus.start()
        db_url = f"sqlite+aiosqlite:///{data_dir / 'vigil.db'}"
        await upgrade(db_url)
        store = Store(create_engine(db_url), SecretBox.generate())
        nats_pid = int((data_dir / "nats" / "nats-server.pid").read_text())
        try:
            return await run_case(bus, store, nats_pid, label, name, spec, messages)
        finally:
            await store.close()
            await bus.shutdown()
            await server.shutdown()


async def main_async(messages: int, only: list[str] | None = None) -> dict[str, Any]:
    cases = [case for case in CASES if not only or case[1] in only]
    results = [await fresh_case(label, name, spec, messages * scale) for label, name, spec, scale in cases]
    return {"cases": [asdict(r) for r in results], "peak_rss_bytes": peak_rss_bytes(os.getpid())}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300, help="1,000-record messages in the backlog")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--case", action="append", help="Only this case, by pipeline name (svc1, errors, body-regex, all)."
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = asyncio.run(main_async(args.messages, args.case))
    if args.json:
        print_json(out)
        return
    for case in out["cases"]:
        print(
            f"{case['case']:<42} {case['records_per_s']:>12,.0f} records/s in"
            f"  ({case['matched_records']:,} matched, {case['batches']:,} batches, {case['seconds']} s)"
            f"  longest loop stall {case['loop_stall_max_ms']:.0f} ms  cores {case['cores_used']}"
        )


if __name__ == "__main__":
    main()
