"""Scaled deployment: Vigil's services as separate processes on a three-node NATS JetStream cluster
(streams replicated three times) and PostgreSQL, with one and with two replicas of the receiver and
the pipeline, beside the single process (`vigil up`, its own nats-server, R1) under the same load.

For each deployment:

1. start it (the API first, for the migrations), create a project, a key and one pipeline
   (`services: [svc-1]`, 5% of the load generator's records, batches of 100 / 500 ms) delivering
   to a local fast agent (`bench/agent.py`, a thread of this process);
2. open a CPU window over every process (Vigil's services, the nats-servers, this process with
   the agent; the load generator reports its own) and run `bench/loadgen.py` (1,000-record
   requests, several clients; with two receivers, client i sends to receiver i mod 2);
3. keep the window open until the router's consumer has nothing pending or unacknowledged and the
   agent has every matching record, then close it.

Ingest records/s is the load generator's (200 answers in its window). Pipeline records/s is the
rate at which the router consumer's ack floor advanced, from its first acknowledgement until the
backlog was drained. CPU seconds per million records = CPU seconds of a process over the whole
window (load and drain) / records accepted over the whole run (warm-up included) x 1e6, so that
every accepted record's ingest, routing and delivery are inside the window.

Usage (from bench/run.py, scenario `scaled`)::

    .venv/bin/python bench/scaled.py [--duration 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agent import AgentThread
from procstat import CpuWindow, load_average
from servers import REPO
from servers import VigilProcess as SingleProcess

sys.path.insert(0, str(REPO))

from output import print_json

from tests.cluster import NatsCluster
from tests.conftest import ADMIN_TOKEN
from tests.process import VigilProcess
from vigil.bus.server import managed_nats_url
from vigil.bus.topology import BATCHES_STREAM, RECORDS_STREAM, ROUTER_CONSUMER, agent_consumer_name
from vigil.store.sealing import generate_key

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PIPELINE = "svc1"
PIPELINE_SPEC_BATCH = {"max_records": 100, "max_wait_ms": 500}
MATCH_SHARE = 0.05  # svc-1 is 1 of the load generator's 20 services
RECORDS_PER_REQUEST = 1000


@dataclass
class Plan:
    clients: int = 8
    duration_s: float = 5.0
    warmup_s: float = 1.0
    drain_timeout_s: float = 60.0


@dataclass
class Deployment:
    """What one run needs from a deployment: where to send, what to watch, how to reach the bus."""

    label: str
    urls: list[str]
    key: str
    nats_urls: list[str]
    project_id: str
    pids: dict[str, int]
    services: dict[str, str] = field(default_factory=dict)
    """Process name -> service (receiver, pipeline, api, sink, nats, vigil up)."""


# --- PostgreSQL -----------------------------------------------------------------------------------


async def _postgres(statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _backend_pids(database: str) -> list[int]:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        rows = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
        return [int(row["pid"]) for row in rows]
    finally:
        await connection.close()


def create_database() -> tuple[str | None, str]:
    """(database name, '') or (None, why PostgreSQL is not usable)."""
    name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # asyncpg absent, connection refused, permission denied ...
        return None, f"{type(exc).__name__}: {exc}"
    return name, ""


def drop_database(name: str) -> None:
    with contextlib.suppress(Exception):
        asyncio.run(_postgres(f'DROP DATABASE "{name}" WITH (FORCE)'))


# --- one measured run -----------------------------------------------------------------------------


async def _consumer_state(nats_urls: list[str], project_id: str) -> tuple[int, int, int, int]:
    """(records stream last seq, router ack floor stream seq, router pending + unacked, agent pending + unacked)."""
    nc = await nats.connect(servers=nats_urls, connect_timeout=5)
    try:
        js = nc.jetstream()
        stream = await js.stream_info(RECORDS_STREAM)
        router = await js.consumer_info(RECORDS_STREAM, ROUTER_CONSUMER)
        agent = await js.consumer_info(BATCHES_STREAM, agent_consumer_name(project_id, PIPELINE))
        return (
            int(stream.state.last_seq),
            int(router.ack_floor.stream_seq if router.ack_floor else 0),
            int((router.num_pending or 0) + (router.num_ack_pending or 0)),
            int((agent.num_pending or 0) + (agent.num_ack_pending or 0)),
        )
    finally:
        await nc.close()


def measure(
    deployment: Deployment, agent: AgentThread, plan: Plan, extra_pids: dict[str, int]
) -> dict[str, Any]:
    pids = {**deployment.pids, **extra_pids, "agent (bench process)": os.getpid()}
    command = [sys.executable, str(REPO / "bench" / "loadgen.py")]
    for url in deployment.urls:
        command += ["--url", url]
    command += [
        "--key",
        deployment.key,
        "--clients",
        str(plan.clients),
        "--duration",
        str(plan.duration_s),
        "--warmup",
        str(plan.warmup_s),
        "--json",
    ]
    for name, pid in deployment.pids.items():
        command += ["--watch", f"{name}={pid}"]
    load_before = load_average()
    agent_before = agent.agent.records
    _, floor_before, _, _ = asyncio.run(_consumer_state(deployment.nats_urls, deployment.project_id))
    window = CpuWindow(pids)
    window.start()
    started = time.monotonic()
    samples: list[tuple[float, int]] = []  # (seconds since start, router ack floor)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        generator = subprocess.Popen(command, stdout=out, stderr=err)
        load_end = None
        drained_at = None
        deadline = started + plan.warmup_s + plan.duration_s + 60 + plan.drain_timeout_s
        backlog_at_load_end = 0
        while time.monotonic() < deadline:
            last_seq, floor, router_left, agent_left = asyncio.run(
                _consumer_state(deployment.nats_urls, deployment.project_id)
            )
            now = time.monotonic() - started
            samples.append((now, floor))
            if load_end is None and generator.poll() is not None:
                load_end = now
                backlog_at_load_end = last_seq - floor
            if load_end is not None:
                expected = (last_seq - floor_before) * RECORDS_PER_REQUEST * MATCH_SHARE
                if router_left == 0 and agent_left == 0 and agent.agent.records - agent_before >= expected:
                    drained_at = now
                    break
            time.sleep(0.2)
        window.stop()
        if generator.poll() is None:
            generator.kill()
        generator.wait()
        out.seek(0)
        err.seek(0)
        if generator.returncode != 0:
            raise RuntimeError(f"the load generator failed:\n{err.read().decode()[-2000:]}")
        load = json.loads(out.read())
    records = load["all_requests_ok"] * RECORDS_PER_REQUEST
    moving = [(t, f) for t, f in samples if f > floor_before]
    first_t = moving[0][0] if moving else 0.0
    last_t, last_floor = samples[-1]
    routed = (last_floor - floor_before) * RECORDS_PER_REQUEST
    cpu_seconds = {name: cores * window.elapsed for name, cores in window.cores_used.items()}
    per_million = {name: seconds / max(1, records) * 1e6 for name, seconds in cpu_seconds.items()}
    load.pop("rss_samples", None)
    load.pop("answer_times", None)
    return {
        "label": deployment.label,
        "receivers": len(deployment.urls),
        "services": deployment.services,
        "load_before": load_before,
        "ingest": load,
        "records": records,
        "agent_records": agent.agent.records - agent_before,
        "window_s": window.elapsed,
        "load_end_s": load_end,
        "drained_s": drained_at,
        "backlog_messages_at_load_end": backlog_at_load_end,
        "pipeline_records_per_s": routed / max(1e-9, last_t - first_t),
        "cpu_seconds": cpu_seconds,
        "cpu_s_per_million": per_million,
        "machine_cores_busy": window.machine_cores_busy,
    }


# --- deployments ----------------------------------------------------------------------------------


def _configure(api_url: str, token: str, agent_url: str, nats_urls: list[str]) -> tuple[str, str]:
    with httpx.Client(
        base_url=f"{api_url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        created = api.post("/projects", json={"name": "bench"})
        created.raise_for_status()
        project_id: str = created.json()["id"]
        key = api.post(f"/projects/{project_id}/api-keys", json={"name": "bench"})
        key.raise_for_status()
        spec = {
            "filter": {"services": ["svc-1"]},
            "batch": PIPELINE_SPEC_BATCH,
            "agent": {"endpoint": agent_url},
        }
        api.put(f"/projects/{project_id}/pipelines/{PIPELINE}", json=spec).raise_for_status()

    async def wait_consumer() -> None:
        nc = await nats.connect(servers=nats_urls)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + 30
            while True:
                try:
                    await js.consumer_info(BATCHES_STREAM, agent_consumer_name(project_id, PIPELINE))
                    await js.consumer_info(RECORDS_STREAM, ROUTER_CONSUMER)
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            "no pipeline process created the agent and router consumers"
                        ) from None
                    await asyncio.sleep(0.1)
        finally:
            await nc.close()

    asyncio.run(wait_consumer())
    time.sleep(1.0)  # every replica's change-notice handler has reloaded by now
    return project_id, key.json()["key"]


SINGLE = "single process (`vigil up`, 1 nats-server, R1)"


def run_single(plan: Plan, tmp: Path, label: str = SINGLE) -> dict[str, Any]:
    vigil = SingleProcess(tmp / "single")
    vigil.start()
    try:
        nats_urls = [managed_nats_url(vigil.data_dir)]
        with AgentThread() as agent:
            from servers import ADMIN_TOKEN as SINGLE_TOKEN

            project_id, key = _configure(
                f"http://127.0.0.1:{vigil.api_port}", SINGLE_TOKEN, agent.url, nats_urls
            )
            deployment = Deployment(
                label,
                [vigil.logs_url],
                key,
                nats_urls,
                project_id,
                {"vigil up": vigil.pid, "nats-server": vigil.nats_pid},
                {"vigil up": "vigil up", "nats-server": "nats"},
            )
            return measure(deployment, agent, plan, {})
    finally:
        vigil.stop()


def run_separate(plan: Plan, tmp: Path, database: str, replicas: int) -> dict[str, Any]:
    with NatsCluster(tmp / "nats") as cluster:
        env = {
            "VIGIL_NATS_URL": cluster.urls,
            "VIGIL_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
            "VIGIL_BUS__REPLICAS": "3",
            "VIGIL_SECRET_KEY": generate_key(),  # one key for every service sharing the database
        }
        names = ["api", "sink"]
        for role in ("receiver", "pipeline"):
            names += [f"{role}-{i + 1}" for i in range(replicas)]
        procs: dict[str, VigilProcess] = {}
        for name in names:
            (tmp / name).mkdir(parents=True, exist_ok=True)
            procs[name] = VigilProcess(tmp / name / "data", command=(name.split("-")[0],), **env)
        try:
            procs["api"].start()  # applies the migrations
            threads = [threading.Thread(target=procs[n].start) for n in names if n != "api"]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for name, proc in procs.items():
                if proc.process is None or proc.process.poll() is not None:
                    raise RuntimeError(f"{name} did not start: {proc.log.read_text()[-2000:]}")
            with AgentThread() as agent:
                nats_urls = cluster.urls.split(",")
                project_id, key = _configure(procs["api"].api_url, ADMIN_TOKEN, agent.url, nats_urls)
                pids: dict[str, int] = {}
                services: dict[str, str] = {}
                for name, proc in procs.items():
                    assert proc.process is not None
                    pids[name] = proc.process.pid
                    services[name] = name.split("-")[0]
                for node in cluster.nodes:
                    assert node.process is not None
                    pids[f"nats {node.name}"] = node.process.pid
                    services[f"nats {node.name}"] = "nats"
                receivers = [procs[n].receiver_url + "/v1/logs" for n in names if n.startswith("receiver")]
                label = f"separate services, {replicas} receiver{'s' if replicas > 1 else ''} + {replicas} pipeline{'s' if replicas > 1 else ''}"
                deployment = Deployment(label, receivers, key, nats_urls, project_id, pids, services)
                backends = {f"postgres {pid}": pid for pid in asyncio.run(_backend_pids(database))}
                result = measure(deployment, agent, plan, backends)
                result["postgres_backends"] = len(backends)
                result["services"].update({name: "postgres" for name in backends})
                return result
        finally:
            stoppers = [threading.Thread(target=p.stop) for p in procs.values()]
            for thread in stoppers:
                thread.start()
            for thread in stoppers:
                thread.join()


def run(plan: Plan, tmp: Path) -> dict[str, Any]:
    database, why = create_database()
    if database is None:
        return {"skipped": f"PostgreSQL is not usable at 127.0.0.1:5432 ({why})"}
    out: dict[str, Any] = {"plan": plan.__dict__, "runs": []}
    try:
        out["runs"].append(run_single(plan, tmp / "single"))
        for replicas in (1, 2):
            if replicas == 2:
                # the single process again, after the one-replica run: one run of it measured 3.0
                # and another 4.1 CPU s per million records, so the comparison takes both sides
                out["runs"].append(run_single(plan, tmp / "single-again", f"{SINGLE}, again"))
                # A fresh database, so the second deployment starts from the same state as the first.
                drop_database(database)
                database, why = create_database()
                if database is None:
                    raise RuntimeError(f"could not create a second database: {why}")
            out["runs"].append(run_separate(plan, tmp / f"separate-{replicas}", database, replicas))
    finally:
        if database is not None:
            drop_database(database)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=Plan.duration_s)
    parser.add_argument("--warmup", type=float, default=Plan.warmup_s)
    parser.add_argument("--clients", type=int, default=Plan.clients)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    plan = Plan(clients=args.clients, duration_s=args.duration, warmup_s=args.warmup)
    with tempfile.TemporaryDirectory(prefix="vigil-scaled-") as tmp:
        result = run(plan, Path(tmp))
    print_json(result, indent=None if args.json else 1)


if __name__ == "__main__":
    main()
