"""A storm through a deduplicating pipeline: how many agent calls 100,000 errors cost.

100,000 error records from 25 distinct templates across 5 services go through the real receiver
of an in-process Vigil to a pipeline with `dedupe` (window 10 s so the window's final counts are
part of the run) and a real local agent that counts its calls. The plain batch-of-10 design makes
100,000 / 10 = 10,000 calls. Prints one JSON object; `--markdown` prints a table instead.

    .venv/bin/python bench/dedupe_storm.py [--records 100000] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import VigilHandle, make_settings
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes
from vigil.runtime import Runtime

SERVICES = ["payment-service", "checkout", "inventory", "auth", "frontend"]
TEMPLATES = [
    "Connection is not available, request timed out after {n}ms",
    "dial tcp 10.0.{n}.5:5432: connect: connection refused",
    "upstream request timeout after {n} ms calling {svc}",
    "Deadlock found when trying to get lock; transaction {n} rolled back",
    "No space left on device while writing /var/lib/data/segment-{n}.log",
]
PER_REQUEST = 500
MARKERS = [
    "Connection is not available",
    "connect: connection refused",
    "upstream request timeout",
    "Deadlock found",
    "No space left",
]


def source_template(body: str) -> int:
    return next(i for i, marker in enumerate(MARKERS) if marker in body)


async def storm(records: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(make_settings(Path(tmp) / "vigil"))
        await runtime.start()
        vigil = VigilHandle(runtime)
        try:
            project_id, key = await vigil.project_with_key("storm")
            async with AgentServer() as agent:
                spec = {
                    "filter": {"min_severity": "ERROR"},
                    "batch": {"max_records": 10, "max_wait_ms": 500},
                    "agent": {"endpoint": agent.url, "concurrency": 4},
                    "dedupe": {"window_s": 10},
                }
                await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/storm", json=spec)
                started = time.monotonic()
                sent = 0
                async with httpx.AsyncClient(base_url=vigil.receiver_url, timeout=60) as client:
                    while sent < records:
                        service = SERVICES[(sent // PER_REQUEST) % len(SERVICES)]
                        bodies = [
                            TEMPLATES[(sent + i) % len(TEMPLATES)].format(n=sent + i, svc=service)
                            for i in range(min(PER_REQUEST, records - sent))
                        ]
                        answer = await client.post(
                            "/v1/logs",
                            content=export_bytes(service, bodies),
                            headers={**PROTOBUF, "X-API-Key": key},
                        )
                        answer.raise_for_status()
                        sent += len(bodies)
                ingested = time.monotonic() - started
                represented = 0
                deadline = time.monotonic() + 60
                while represented < records and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    items = [r for _, batch in agent.batches() for r in batch]
                    represented = sum(int(r.get("count", 1)) for r in items)
                items = [r for _, batch in agent.batches() for r in batch]
                groups = {(r["resourceAttributes"]["service.name"], r["template_id"]) for r in items}
                covered = {
                    (r["resourceAttributes"]["service.name"], source_template(r["body"])) for r in items
                }
                return {
                    "records": records,
                    "distinct_problems": len(SERVICES) * len(TEMPLATES),
                    "agent_calls": len(agent.batches()),
                    "items_delivered": len(items),
                    "records_represented": represented,
                    "problems_delivered": len(covered),
                    "template_ids_delivered": len(groups),
                    "plain_batch_of_10_calls": -(-records // 10),
                    "ingest_seconds": round(ingested, 2),
                    "until_all_represented_seconds": round(time.monotonic() - started, 2),
                }
        finally:
            await vigil.close()
            await runtime.shutdown()


def markdown(result: dict[str, Any]) -> str:
    verdict = "PASS" if result["agent_calls"] <= 100 and result["problems_delivered"] == 25 else "MISS"
    return "\n".join(
        [
            "| Records | Distinct problems | Agent calls (target ≤ 100) | Plain batch-of-10 calls | Items | Records represented | Problems delivered | Result |",
            "|---|---|---|---|---|---|---|---|",
            f"| {result['records']:,} | {result['distinct_problems']} | **{result['agent_calls']}** | "
            f"{result['plain_batch_of_10_calls']:,} | {result['items_delivered']} | {result['records_represented']:,} | "
            f"{result['problems_delivered']} | **{verdict}** |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(storm(args.records))
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
