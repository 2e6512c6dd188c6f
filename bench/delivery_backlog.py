"""Delivery of an all-matching backlog: records/s from the first export to the agent's last receipt.

`vigil up` gets a pipeline with an empty filter (every record matches), batches of 100 records
(max_wait_ms 500), the default redaction (every built-in rule) and templates, and a local agent
(bench/agent.py's `RecordingAgent` in a thread of this process, answering 200 at once and
counting records without decoding the batches). Then
`--records` records go in as unique 1,000-record exports (bench/loadgen.py's bodies) over
`--clients` keep-alive connections, as fast as Vigil answers. The clock runs from the first export
to the agent's receipt of the last record; CPU seconds of `vigil up`, its pipeline workers (with
`--workers N`) and its nats-server over the same window give the CPU per delivered record.

Usage::

    .venv/bin/python bench/delivery_backlog.py [--records 200000] [--clients 4] [--workers 0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agent import AgentThread
from loadgen import BodySource, HttpConnection
from output import print_json
from procstat import CpuWindow, children, load_average
from profile_summary import Profiler
from servers import VigilProcess

DRAIN_LIMIT_S = 300.0
PROFILE_S = 6
BENCH = "bench (load and agent)"


@dataclass
class BacklogResult:
    records: int
    clients: int
    max_records: int
    pipeline_workers: int = 0
    """`VIGIL_PIPELINE_WORKERS`: 0 routes and delivers in the `vigil up` process."""
    accepted_records: int = 0
    delivered_records: int = 0
    batches: int = 0
    repeated_batches: int = 0
    """Batches the agent got again under a request id it had (at-least-once), not counted twice."""
    ingest_s: float = 0.0
    """First export to the last export's answer."""
    seconds: float = 0.0
    """First export to the agent's receipt of the last record."""
    records_per_s: float = 0.0
    cores_used: dict[str, float] = field(default_factory=dict)
    cpu_us_per_record: float = 0.0
    """CPU of `vigil up`, its workers and its nats-server over the window, per delivered record."""
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    profiles: dict[str, dict[str, float]] = field(default_factory=dict)
    """With `profile`: each process's busy time by category (py-spy), this one's included."""


async def send_all(url: str, key: str, records: int, clients: int) -> int:
    source = BodySource(8, prefix=42)
    bodies = [source.next() for _ in range(records // 1000)]
    headers = {"Content-Type": "application/x-protobuf", "X-API-Key": key}
    accepted = [0]

    async def client(share: list[tuple[bytes, int]]) -> None:
        connection = HttpConnection(url, headers)
        try:
            for body, count in share:
                for _ in range(600):  # Vigil answers 429 while the bus is over its limit
                    if await connection.post(body) != 429:
                        break
                    await asyncio.sleep(0.1)
                accepted[0] += count
        finally:
            connection.close()

    await asyncio.gather(*(client(bodies[i::clients]) for i in range(clients)))
    return accepted[0]


def run(
    data_dir: Path,
    *,
    records: int = 200_000,
    clients: int = 4,
    max_records: int = 100,
    pipeline_workers: int = 0,
    profile: Path | None = None,
) -> BacklogResult:
    result = BacklogResult(records, clients, max_records, pipeline_workers, load_before=load_average())
    vigil = VigilProcess(data_dir, env={"VIGIL_PIPELINE_WORKERS": str(pipeline_workers)})
    vigil.start()
    try:
        project_id, key = vigil.project_with_key("backlog")
        with AgentThread(decode=False) as agent_thread:
            agent = agent_thread.agent
            vigil.put_pipeline(
                project_id,
                "all",
                {
                    "filter": {},
                    "batch": {"max_records": max_records, "max_wait_ms": 500},
                    "agent": {"endpoint": agent_thread.url},
                },
            )
            vigil.wait_routers(max(1, pipeline_workers))
            time.sleep(1.0)  # the configuration reaches the router and the workers
            workers = [pid for pid in children(vigil.pid) if pid != vigil.nats_pid]
            cpu = CpuWindow(
                {
                    "vigil": vigil.pid,
                    **{f"worker {i + 1}": pid for i, pid in enumerate(workers)},
                    "nats-server": vigil.nats_pid,
                    BENCH: os.getpid(),
                }
            )
            profilers: dict[str, Profiler] = {}
            if profile is not None:
                profile.mkdir(parents=True, exist_ok=True)
                for name, pid in cpu.pids.items():
                    if name != "nats-server":
                        path = profile / f"{name.split()[0]}-{pid}.txt"
                        profilers[name] = Profiler(pid, PROFILE_S, path)
            cpu.start()
            started = time.monotonic()
            result.accepted_records = uvloop.run(send_all(vigil.logs_url, key, records, clients))
            result.ingest_s = time.monotonic() - started
            deadline = started + DRAIN_LIMIT_S
            while agent.records < result.accepted_records and time.monotonic() < deadline:
                time.sleep(0.02)
            result.seconds = time.monotonic() - started
            cpu.stop()
            result.delivered_records = agent.records
            result.batches = agent.batches
            result.repeated_batches = agent.repeated_batches
            result.profiles = {name: p.wait() for name, p in profilers.items()}
    finally:
        vigil.stop()
    result.records_per_s = result.delivered_records / result.seconds
    result.cores_used = cpu.cores_used
    vigil_cpu = (
        sum(cores for name, cores in cpu.cores_used.items() if name not in ("other processes", BENCH))
        * cpu.elapsed
    )
    result.cpu_us_per_record = vigil_cpu / max(1, result.delivered_records) * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0, help="VIGIL_PIPELINE_WORKERS")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=Path, help="a directory for py-spy's raw stacks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-backlog-") as tmp:
        result = run(
            Path(tmp) / "vigil",
            records=args.records,
            clients=args.clients,
            pipeline_workers=args.workers,
            profile=args.profile,
        )
    if args.json:
        print_json(asdict(result))
    else:
        for key, value in asdict(result).items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
