"""Latency from export to agent receipt at a steady rate, through a real `vigil up`.

An open-loop sender posts 100-record exports at a fixed rate (20 requests/s = 2,000 records/s),
each record carrying its send time (`time.time_ns()` taken just before the request is written)
in the attribute `bench.sent_ns`. A pipeline with an empty filter sends every record to a local
agent: a real HTTP server that notes the time each batch arrives. The latency of a record is its
receipt time minus its send time (same clock, same process).

Usage::

    .venv/bin/python bench/latency.py [--rate 20] [--records 100] [--duration 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agent import SENT_KEY, RecordingAgent
from loadgen import HttpConnection, build_export, percentile
from output import print_json
from procstat import CpuWindow
from profile_summary import Profiler
from servers import VigilProcess

from vigil.specs import AgentSpec

STAMP_WIDTH = 19  # digits of time.time_ns() until 2286
STRAGGLER_WAIT_S = 10.0


@dataclass
class LatencyResult:
    rate_records_per_s: float
    duration_s: float
    max_wait_ms: int
    max_records: int
    concurrency: int
    sent_records: int = 0
    received_records: int = 0
    straggler_wait_s: float = 0.0
    answers: dict[int, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    delivered_p50_ms: float = 0.0
    delivered_max_ms: float = 0.0
    batches: int = 0
    mean_batch_records: float = 0.0
    cores_used: dict[str, float] = field(default_factory=dict)
    delivery_attempts: int = 0
    delivery_attempt_ms: float = 0.0
    """Mean time of one delivery attempt, from Vigil's `vigil_delivery_seconds` metric."""
    capacity_records_per_s: float = 0.0
    """What the pipeline's workers can deliver: concurrency / attempt time x records per batch."""
    cpu_us_per_record: float = 0.0
    """CPU of `vigil up` and its nats-server in the window, per record sent in it."""
    profile: dict[str, float] = field(default_factory=dict)
    """Where `vigil up`'s busy time went in the window (py-spy, by category), when asked for."""


class Templates:
    """100-record exports with a fixed-width send-time placeholder in every record."""

    def __init__(self, count: int, records: int) -> None:
        services = 5
        self.marker = b"#" * STAMP_WIDTH
        self.bodies = [
            build_export(
                seed + 1000,
                services=services,
                per_service=records // services,
                with_placeholder=False,
                extra_attributes={SENT_KEY: self.marker.decode()},
            ).SerializeToString()
            for seed in range(count)
        ]
        self.records = records // services * services

    def stamped(self, number: int) -> tuple[bytes, int]:
        """The body with the current time in every record; the time also makes the body unique."""
        sent = time.time_ns()
        return self.bodies[number % len(self.bodies)].replace(self.marker, str(sent).encode()), sent


async def measure(
    vigil: VigilProcess,
    *,
    rate: float,
    records: int,
    duration_s: float,
    warmup_s: float,
    max_wait_ms: int,
    max_records: int,
    concurrency: int | None,
    profile: Path | None = None,
) -> LatencyResult:
    agent = RecordingAgent()
    await agent.start()
    project_id, key = vigil.project_with_key("latency")
    agent_spec: dict[str, Any] = {"endpoint": f"http://127.0.0.1:{agent.port}/process"}
    if concurrency is not None:
        agent_spec["concurrency"] = concurrency
    vigil.put_pipeline(
        project_id,
        "all",
        {
            "filter": {},
            "batch": {"max_records": max_records, "max_wait_ms": max_wait_ms},
            "agent": agent_spec,
        },
    )
    await asyncio.sleep(1.0)  # the configuration change reaches the router and the workers
    templates = Templates(16, records)
    result = LatencyResult(
        rate * templates.records,
        duration_s,
        max_wait_ms,
        max_records,
        concurrency or AgentSpec.model_fields["concurrency"].default,
    )
    headers = {"Content-Type": "application/x-protobuf", "X-API-Key": key}
    idle: list[HttpConnection] = []
    answers: dict[int, int] = {}
    window: list[int] = []  # send times (ns) of the measurement window: [start, end)
    cpu = CpuWindow({"vigil": vigil.pid, "nats-server": vigil.nats_pid, "sender + agent": os.getpid()})

    first_in_window = int(warmup_s * rate)
    accepted_in_window = [0]  # records of the window's requests answered 200: only those must arrive

    async def send_one(number: int) -> None:
        connection = idle.pop() if idle else HttpConnection(vigil.logs_url, headers)
        body, _ = templates.stamped(number)
        try:
            status = await connection.post(body)
        except (OSError, asyncio.IncompleteReadError):
            # The server closed this keep-alive connection: count the failure, drop the connection.
            answers[-1] = answers.get(-1, 0) + 1
            return
        answers[status] = answers.get(status, 0) + 1
        if status == 200 and number >= first_in_window:
            accepted_in_window[0] += templates.records
        idle.append(connection)

    loop = asyncio.get_running_loop()
    start = loop.time()
    total = int((warmup_s + duration_s) * rate)
    tasks: list[asyncio.Task[None]] = []
    for number in range(total):
        await asyncio.sleep(max(0.0, start + number / rate - loop.time()))
        if number == int(warmup_s * rate):
            window.append(time.time_ns())
            cpu.start()
            if profile is not None:
                profiler = Profiler(vigil.pid, duration_s, profile)
        tasks.append(asyncio.create_task(send_one(number)))
    await asyncio.gather(*tasks)
    window.append(time.time_ns())
    cpu.stop()
    if profile is not None:
        result.profile = profiler.wait()
    # Stragglers: wait until every record accepted in the window arrived, or STRAGGLER_WAIT_S.
    expected = accepted_in_window[0]
    deadline = loop.time() + STRAGGLER_WAIT_S
    while loop.time() < deadline:
        got = sum(1 for sent, _ in agent.latencies_ms if window[0] <= sent < window[1])
        if got >= expected:
            break
        await asyncio.sleep(0.2)
    await agent.stop()
    for connection in idle:
        connection.close()
    attempts, seconds = vigil.metric_sum_count("vigil_delivery_seconds", kind="batch")
    result.delivery_attempts = attempts
    result.delivery_attempt_ms = seconds / attempts * 1000 if attempts else math.nan
    if attempts and seconds:
        result.capacity_records_per_s = result.concurrency / (seconds / attempts) * max_records

    latencies = [ms for sent, ms in agent.latencies_ms if window[0] <= sent < window[1]]
    result.sent_records = expected
    result.received_records = len(latencies)
    result.straggler_wait_s = STRAGGLER_WAIT_S
    result.delivered_p50_ms = percentile(latencies, 0.50)
    result.delivered_max_ms = max(latencies, default=math.nan)
    # A record that has not arrived counts as slower than any that did: percentiles stay honest.
    latencies += [math.inf] * max(0, expected - len(latencies))
    result.answers = answers
    result.p50_ms = percentile(latencies, 0.50)
    result.p90_ms = percentile(latencies, 0.90)
    result.p99_ms = percentile(latencies, 0.99)
    result.max_ms = max(latencies, default=math.nan)
    result.batches = agent.batches
    result.mean_batch_records = sum(agent.batch_sizes) / max(1, agent.batches)
    result.cores_used = cpu.cores_used
    vigil_cores = cpu.cores_used["vigil"] + cpu.cores_used["nats-server"]
    result.cpu_us_per_record = vigil_cores / result.rate_records_per_s * 1e6
    return result


def run(
    data_dir: Path,
    *,
    rate: float = 20,
    records: int = 100,
    duration_s: float = 20,
    warmup_s: float = 3,
    max_wait_ms: int = 500,
    max_records: int = 10,
    concurrency: int | None = None,
    profile: Path | None = None,
) -> LatencyResult:
    vigil = VigilProcess(data_dir)
    vigil.start()
    try:
        return uvloop.run(
            measure(
                vigil,
                rate=rate,
                records=records,
                duration_s=duration_s,
                warmup_s=warmup_s,
                max_wait_ms=max_wait_ms,
                max_records=max_records,
                concurrency=concurrency,
                profile=profile,
            )
        )
    finally:
        vigil.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20, help="requests per second")
    parser.add_argument("--records", type=int, default=100, help="records per request")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--max-wait-ms", type=int, default=500)
    parser.add_argument("--max-records", type=int, default=10)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="the agent's concurrency (default: Vigil's)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=Path, help="a file for py-spy's raw stacks of `vigil up`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-latency-") as tmp:
        result = run(
            Path(tmp) / "vigil",
            rate=args.rate,
            records=args.records,
            duration_s=args.duration,
            max_wait_ms=args.max_wait_ms,
            max_records=args.max_records,
            concurrency=args.concurrency,
            profile=args.profile,
        )
    if args.json:
        print_json(asdict(result))
    else:
        for key, value in asdict(result).items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
