"""`make bench`: Vigil's performance on this machine, written to docs/benchmarks.md.

Scenarios (see docs/benchmarks.md for what each measures and why):

a. ingest      `vigil up` (subprocess) vs the straightforward receiver, same load generator
b. pipeline    the router's filter + batch rate at 5% and 100% matching (in-process)
c. latency     export -> agent receipt at a steady 2,000 records/s (subprocess + local agent),
               with the CPU of Vigil's processes per record and a py-spy profile summary
   delivery    an all-matching 200,000-record backlog through `vigil up` to an agent (records/s,
               CPU per record; without and with pipeline workers), the router's steps per record,
               and HTTP clients compared (section l)
d. overload    RSS of `vigil up` under sustained overload with a small records stream
e. scaled      separate services on a three-node NATS cluster (1 and 2 replicas) vs `vigil up`:
               records/s, CPU seconds per million records per service, and a capacity model
   dedupe, templates, nab: the deduplication storm, template mining accuracy, the NAB score
   detection   spans and records per second through the detector's windows, signals and
               incidents (in-process, and end to end through `vigil up`), and its memory per
               1,000 active endpoints (bench/detection.py; section i of the page)
   saturation  16 and 32 concurrent exporters at default limits: time to every answer, 429s,
               throughput against reference runs at the ingest scenario's client count made
               alternately with them (bench/saturation.py; section j)
   analysis    the rules engine's analysis of scripted fault scenarios sent as telemetry: root
               cause, runbook, citations, "don't know", precision at 0.7 (bench/analysis_eval.py;
               section n)
   workflow    an alert storm, alert to first action for 100 concurrent autonomous alerts, and
               memory per 1,000 open workflows (bench/workflow.py; section k)
   ui          the web UI's list calls with 10,000 incidents and 100,000 outputs stored: p50 and
               p95 of each (bench/ui.py; section m; about a minute)

Usage::

    .venv/bin/python bench/run.py [--quick] [--only ingest,pipeline,...,detection]
                                  [--output docs/benchmarks.md] [--results results.json]

Without `--only` every scenario runs and the page is written anew. With `--only`, only the
sections (and summary rows) of the scenarios run are replaced in the existing page, so one
scenario can be refreshed alone: `.venv/bin/python bench/run.py --only detection`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import baseline_receiver
import delivery_backlog
import latency
import nats
import router_steps
import saturation
import scaled
import ui
import workflow
from agent import AgentThread
from loadgen import BodySource
from procstat import children, load_average, peak_rss_bytes, wait_quiet
from report import describe_machine, render, splice
from servers import REPO, BaselineProcess, VigilProcess, discard, free_port

from vigil.bus.server import managed_nats_url

MiB = 1024 * 1024
SCENARIOS = (
    "ingest",
    "pipeline",
    "latency",
    "delivery",
    "overload",
    "scaled",
    "dedupe",
    "templates",
    "nab",
    "detection",
    "saturation",
    "workflow",
    "ui",
    "analysis",
)


@dataclass(frozen=True)
class Plan:
    ingest_clients: int = 8
    ingest_s: float = 15.0
    warmup_s: float = 3.0
    router_messages: int = 300
    latency_s: float = 20.0
    overload_s: float = 45.0
    overload_variant_s: float = 30.0
    overload_clients: int = 8
    overload_stream_bytes: int = 64 * MiB
    backlog_records: int = 200_000


QUICK = Plan(
    ingest_s=5.0,
    warmup_s=2.0,
    router_messages=60,
    latency_s=6.0,
    overload_s=20.0,
    overload_variant_s=20.0,
    backlog_records=50_000,
)


def loadgen(
    url: str,
    key: str,
    *,
    clients: int,
    duration_s: float,
    warmup_s: float,
    watch: dict[str, int],
    backoff_429_s: float = 0.0,
) -> Any:
    command = [
        sys.executable,
        str(REPO / "bench" / "loadgen.py"),
        "--url",
        url,
        "--key",
        key,
        "--clients",
        str(clients),
        "--duration",
        str(duration_s),
        "--warmup",
        str(warmup_s),
        "--json",
    ]
    for name, pid in watch.items():
        command += ["--watch", f"{name}={pid}"]
    if backoff_429_s:
        command += ["--backoff-429", str(backoff_429_s)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=duration_s + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def bus_messages(vigil: VigilProcess) -> int:
    """Messages the records stream has taken so far (its last sequence number)."""

    async def ask() -> int:
        nc = await nats.connect(managed_nats_url(vigil.data_dir))
        try:
            info = await nc.jetstream().stream_info("VIGIL_RECORDS")
            return int(info.state.last_seq)
        finally:
            await nc.close()

    return asyncio.run(ask())


def scenario_ingest(plan: Plan, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"clients": plan.ingest_clients, "duration_s": plan.ingest_s}
    vigil = VigilProcess(tmp / "ingest-vigil")
    vigil.start()
    try:
        _, key = vigil.project_with_key()
        out["load_before"] = load_average()
        out["vigil"] = loadgen(
            vigil.logs_url,
            key,
            clients=plan.ingest_clients,
            duration_s=plan.ingest_s,
            warmup_s=plan.warmup_s,
            watch={"vigil": vigil.pid, "nats-server": vigil.nats_pid},
        )
        out["vigil_peak_rss"] = peak_rss_bytes(vigil.pid)
        out["nats_peak_rss"] = peak_rss_bytes(vigil.nats_pid)
        out["bus_messages"] = bus_messages(vigil)
    finally:
        vigil.stop()
        discard(vigil.data_dir)
    out["recent_window"] = recent_window_cost(plan, tmp)
    out["vigil_with_pipeline"] = ingest_with_pipeline(plan, tmp)
    out["vigil_with_pipeline_workers"] = ingest_with_pipeline(plan, tmp, workers=2)
    baseline = BaselineProcess(tmp / "ingest-baseline")
    baseline.start()
    try:
        out["baseline"] = loadgen(
            baseline.logs_url,
            "none",
            clients=plan.ingest_clients,
            duration_s=plan.ingest_s,
            warmup_s=plan.warmup_s,
            watch={"baseline": baseline.pid},
        )
        out["baseline_peak_rss"] = peak_rss_bytes(baseline.pid)
    finally:
        baseline.stop()
    source = BodySource(8, prefix=999)
    out["baseline_breakdown_ms"] = baseline_receiver.breakdown(
        [source.next()[0] for _ in range(20)], str(tmp / "breakdown.db")
    )
    out["ratio"] = out["vigil"]["records_per_s"] / max(1.0, out["baseline"]["records_per_s"])
    return out


def keep_cost(messages: int = 200_000) -> float:
    """Microseconds the router's tap takes per records message (a 1,000-record export), every
    message kept and the window full so that each also evicts one: the tap's own work, which the
    machine's other load cannot blur."""
    from loadgen import BodySource

    from vigil.investigate.window import RecentRecords
    from vigil.settings import InvestigateSettings

    bodies = [BodySource(8, prefix=7).next()[0] for _ in range(8)]
    recent = RecentRecords(InvestigateSettings(recent_max_bytes_per_s=1 << 40))  # every message kept
    now = time.time_ns()
    started = time.perf_counter()
    for i in range(messages):
        recent.keep("bench", bodies[i % 8], now, 1000)
    return (time.perf_counter() - started) * 1e6 / messages


def recent_window_cost(plan: Plan, tmp: Path, rounds: int = 4) -> dict[str, Any]:
    """Ingest with and without the recent records window (kept for investigation), in
    alternating rounds so that the machine's other load falls on both alike: records/s and the
    CPU of `vigil up` per record, each run in a fresh data directory."""
    runs: dict[str, Any] = {"with": [], "without": [], "keep_us_per_message": keep_cost()}
    for round_ in range(rounds):
        # with, without, without, with, ...: a trend in the machine's load falls on both alike
        for kept in ("with", "without") if round_ % 2 == 0 else ("without", "with"):
            env = {} if kept == "with" else {"VIGIL_INVESTIGATE__RECENT_ENABLED": "false"}
            vigil = VigilProcess(tmp / f"ingest-recent-{kept}-{round_}", env=env)
            vigil.start()
            try:
                _, key = vigil.project_with_key()
                run: dict[str, Any] = loadgen(
                    vigil.logs_url,
                    key,
                    clients=plan.ingest_clients,
                    duration_s=plan.ingest_s,
                    warmup_s=plan.warmup_s,
                    watch={"vigil": vigil.pid, "nats-server": vigil.nats_pid},
                )
                run["peak_rss"] = peak_rss_bytes(vigil.pid)
            finally:
                vigil.stop()
                discard(vigil.data_dir)
            run["vigil_us_per_record"] = run["cores_used"]["vigil"] * 1e6 / max(1.0, run["records_per_s"])
            runs[kept].append(run)
    return runs


def ingest_with_pipeline(plan: Plan, tmp: Path, workers: int = 0) -> dict[str, Any]:
    """The same load while a 5% pipeline routes every request to a local agent, in the same
    process or (`workers`) in pipeline worker processes."""
    vigil = VigilProcess(
        tmp / f"ingest-vigil-pipeline-{workers}", env={"VIGIL_PIPELINE_WORKERS": str(workers)}
    )
    vigil.start()
    try:
        project_id, key = vigil.project_with_key()
        with AgentThread(decode=False) as agent:
            vigil.put_pipeline(
                project_id,
                "svc1",
                {
                    "filter": {"services": ["svc-1"]},
                    "batch": {"max_records": 100, "max_wait_ms": 500},
                    "agent": {"endpoint": agent.url},
                },
            )
            vigil.wait_routers(max(1, workers))
            time.sleep(1.0)
            result: dict[str, Any] = loadgen(
                vigil.logs_url,
                key,
                clients=plan.ingest_clients,
                duration_s=plan.ingest_s,
                warmup_s=plan.warmup_s,
                watch={
                    "vigil": vigil.pid,
                    **{f"worker {i + 1}": pid for i, pid in enumerate(pipeline_workers(vigil))},
                    "nats-server": vigil.nats_pid,
                },
            )
            time.sleep(2.0)
            result["agent_records"] = agent.agent.records
            result["pipeline_workers"] = workers
        result["peak_rss"] = peak_rss_bytes(vigil.pid)
    finally:
        vigil.stop()
        discard(vigil.data_dir)
    return result


def pipeline_workers(vigil: VigilProcess) -> list[int]:
    return [pid for pid in children(vigil.pid) if pid != vigil.nats_pid]


def scenario_pipeline(plan: Plan) -> dict[str, Any]:
    command = [
        sys.executable,
        str(REPO / "bench" / "pipeline_rate.py"),
        "--messages",
        str(plan.router_messages),
        "--json",
    ]
    load = load_average()
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"the router benchmark failed:\n{done.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    out["load_before"] = load
    return out


def scenario_latency(plan: Plan, tmp: Path) -> list[dict[str, Any]]:
    """The default concurrency and 16, measured unprofiled, then the default again under py-spy:
    the profiler takes cores of its own and slows the process it samples, so the CPU and latency
    targets are read from the unprofiled run and only the profile from the third."""
    runs = []
    for concurrency, profiled in ((None, False), (16, False), (None, True)):
        load = load_average()
        name = f"latency-{concurrency or 'default'}{'-profiled' if profiled else ''}"
        result = latency.run(
            tmp / name,
            duration_s=plan.latency_s,
            concurrency=concurrency,
            profile=tmp / "latency-profile.txt" if profiled else None,
        )
        runs.append({**asdict(result), "load_before": load, "profiled": profiled})
    return runs


def scenario_delivery(plan: Plan, tmp: Path) -> dict[str, Any]:
    """The all-matching backlog through `vigil up` to an agent, the router's steps per record,
    and the HTTP clients compared on one load."""
    load = load_average()
    backlogs = [
        asdict(
            delivery_backlog.run(
                tmp / f"delivery-backlog-{workers}", records=plan.backlog_records, pipeline_workers=workers
            )
        )
        for workers in (0, 2)
    ]
    steps = router_steps.measure(messages=40, repeat=3)
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "http_clients.py"), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    clients = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-2000:]}
    return {"backlogs": backlogs, "router_steps": steps, "http_clients": clients, "load_before": load}


def scenario_overload(plan: Plan, tmp: Path) -> list[dict[str, Any]]:
    """The requirement's run, then the same with a small router window (to show what bounds RSS)."""
    limit = str(plan.overload_stream_bytes)
    variants: list[tuple[str, dict[str, str], float]] = [
        ("defaults", {}, plan.overload_s),
        ("router_max_pending 16", {"VIGIL_BUS__ROUTER_MAX_PENDING": "16"}, plan.overload_variant_s),
    ]
    runs: list[dict[str, Any]] = []
    for label, extra, duration_s in variants:
        env = {"VIGIL_BUS__RECORDS_MAX_BYTES": limit, "VIGIL_BUS__BATCHES_MAX_BYTES": limit, **extra}
        runs.append(_overload_run(plan, tmp / f"overload-{len(runs)}", label, env, duration_s))
    return runs


def _overload_run(
    plan: Plan, data_dir: Path, label: str, env: dict[str, str], duration_s: float
) -> dict[str, Any]:
    vigil = VigilProcess(data_dir, env=env)
    vigil.start()
    try:
        project_id, key = vigil.project_with_key()
        # An agent that is down (nothing listens on the port): no batch is ever delivered.
        vigil.put_pipeline(
            project_id,
            "stuck",
            {"filter": {}, "agent": {"endpoint": f"http://127.0.0.1:{free_port()}/process"}},
        )
        time.sleep(1.0)
        load = load_average()
        result = loadgen(
            vigil.logs_url,
            key,
            clients=plan.overload_clients,
            duration_s=duration_s,
            warmup_s=0.0,
            watch={"vigil": vigil.pid, "nats-server": vigil.nats_pid},
        )
        peak = peak_rss_bytes(vigil.pid)
        nats_peak = peak_rss_bytes(vigil.nats_pid)
    finally:
        vigil.stop()
    return {
        "label": label,
        "env": env,
        "stream_limit_bytes": plan.overload_stream_bytes,
        "clients": plan.overload_clients,
        "duration_s": duration_s,
        "load_before": load,
        "load": result,
        "vigil_peak_rss": peak,
        "nats_peak_rss": nats_peak,
    }


def scenario_detection(quick: bool) -> dict[str, Any]:
    """bench/detection.py in its own process (its memory cases each get one more); progress on stderr."""
    command = [sys.executable, str(REPO / "bench" / "detection.py"), "--json"] + (
        ["--quick"] if quick else []
    )
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, cwd=REPO, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError("the detection benchmark failed (its error is above)")
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def scenario_analysis() -> dict[str, Any]:
    """bench/analysis_eval.py in its own process (it runs Vigil in-process); progress on stderr."""
    command = [sys.executable, str(REPO / "bench" / "analysis_eval.py"), "--json"]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, cwd=REPO, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError("the analysis evaluation failed (its error is above)")
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _script(name: str) -> str:
    """Run one of the self-contained benchmark scripts beside this one; return what it printed."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / name)], capture_output=True, text=True, check=True, cwd=REPO
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs, to check the benchmark itself")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, default=None, help="also write the raw results as JSON")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    started = time.monotonic()
    results: dict[str, Any] = {"machine": describe_machine(), "plan": asdict(plan), "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for name in only:
            waited = wait_quiet()
            print(f"== {name} ... (after {waited:.0f} s for the machine to settle)", flush=True)
            work = tmp / name
            work.mkdir()
            if name == "ingest":
                results["ingest"] = scenario_ingest(plan, work)
            elif name == "pipeline":
                results["pipeline"] = scenario_pipeline(plan)
            elif name == "latency":
                results["latency"] = scenario_latency(plan, work)
            elif name == "delivery":
                results["delivery"] = scenario_delivery(plan, work)
            elif name == "overload":
                results["overload"] = scenario_overload(plan, work)
            elif name == "scaled":
                results["scaled"] = scaled.run(scaled.Plan(), work)
            elif name == "dedupe":
                results["dedupe"] = json.loads(_script("dedupe_storm.py"))
            elif name == "templates":
                results["templates"] = _script("templates_accuracy.py")
                results["templates_cv"] = _script("templates_cv.py")
            elif name == "nab":
                results["nab"] = _script("nab_score.py")
                results["nab_cv"] = _script("nab_cv.py")
            elif name == "detection":
                results["detection"] = scenario_detection(args.quick)
            elif name == "saturation":
                results["saturation"] = saturation.run(
                    loadgen,
                    work,
                    duration_s=plan.ingest_s,
                    warmup_s=plan.warmup_s,
                    reference_clients=plan.ingest_clients,
                )
            elif name == "workflow":
                results["workflow"] = workflow.run(work)
            elif name == "ui":
                results["ui"] = ui.run(work)
            elif name == "analysis":
                results["analysis"] = scenario_analysis()
            discard(work)
    results["elapsed_s"] = time.monotonic() - started
    results["machine"]["load_after"] = load_average()

    results["scenarios"] = only
    if set(only) != set(SCENARIOS) and args.output.exists():
        # a partial run refreshes its own sections and keeps the rest of the page
        document, summary = splice(args.output.read_text(), results)
    else:
        document, summary = render(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document)
    if args.results is not None:
        args.results.write_text(json.dumps(results, indent=1))
    print(summary)
    print(f"\nwritten to {args.output} ({results['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
