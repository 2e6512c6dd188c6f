"""Remediation workflow: alerts into incidents and DBOS workflows, through `vigil up` (a subprocess).

1. Alert storm: 1,000 Alertmanager notifications of 10 distinct alerts from 16 concurrent senders,
   with a supervised notify-only runbook matching them, so each incident's workflow opens and waits
   for approval: notifications/s, incidents and workflows opened (10 each), notifications counted
   per incident (100 each), time from the first notification to the last workflow opened.
2. Time to first action: 100 concurrent autonomous alerts (100 fingerprints), each matching an
   autonomous runbook whose step is an `http.request` to a local server in the bench process; from
   the start of each alert's POST to the arrival of its action call (its `Idempotency-Key` names the
   workflow). Target: p99 under 1 s with the rules engine.
3. Memory per 1,000 open workflows: 1,000 supervised alerts whose workflows all wait for approval;
   `vigil up`'s RSS before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import httpx
from action_receiver import ActionReceiver
from procstat import (
    CpuWindow,
    cpu_seconds,
    load_average,
    main_thread_cpu_seconds,
    peak_rss_bytes,
    rss_bytes,
)
from servers import ADMIN_TOKEN, REPO, VigilProcess

sys.path.insert(0, str(REPO))
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification
from vigil.workflow.engine import SQLITE_WAKE_POLL_S
from vigil.workflow.flow import APPROVAL_POLL_S

MiB = 1024 * 1024
STORM_NOTIFICATIONS = 1000
STORM_ALERTS = 10
STORM_SENDERS = 16
ACT_ALERTS = 100
SINGLE_ALERTS = 10
SMALLER_BURSTS = (10, 25)
MEMORY_WORKFLOWS = 1000
MEMORY_SENDERS = 16
TARGET_P99_S = 1.0
IDLE_S = 10.0
WAIT_S = 300.0
SETTLE_S = 3.0
"""After the last action call: the records after the actions wait for others' first actions (at
most 2 s, `vigil.workflow.first_actions`), and their CPU belongs to the alerts too."""
FIRING_SINCE = datetime.now(UTC) - timedelta(minutes=5)
"""One `startsAt` for every notification: a repeated alert stays in its firing episode, as
Alertmanager repeats it."""


def run(tmp: Path) -> dict[str, Any]:
    return {
        "storm": _in_vigil(tmp / "workflow-storm", _storm),
        "first_action": _in_vigil(tmp / "workflow-first-action", _first_action),
        "memory": _in_vigil(tmp / "workflow-memory", _memory),
    }


def _in_vigil(data_dir: Path, scenario: Any) -> dict[str, Any]:
    """Run `scenario` against a fresh `vigil up` (one project and key made for it)."""
    vigil = VigilProcess(data_dir)
    vigil.start()
    try:
        project_id, key = vigil.project_with_key()
        load = load_average()
        result: dict[str, Any] = asyncio.run(scenario(vigil, project_id, key))
        result["load_before"] = load
        result["load_after"] = load_average()
        result["vigil_peak_rss"] = peak_rss_bytes(vigil.pid)
        return result
    except Exception:
        print(vigil.log_tail(40), file=sys.stderr)
        raise
    finally:
        vigil.stop()


def _runbook(match: str, tier: str, step: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": f"bench {match}",
        "match": {"alert_labels": {"bench": match}},
        "tier": tier,
        "steps": [step],
        "verify": {"after_s": 3600, "timeout_s": 3600},  # nothing after the action during the run
    }


def _notify_runbook(match: str) -> dict[str, Any]:
    return _runbook(match, "supervised", {"action": "notify", "params": {"message": "bench: look at it"}})


def _alert(match: str, name: str, tier: str) -> dict[str, Any]:
    labels = {"alertname": name, "bench": match, "tier": tier, "service": "checkout"}
    return alertmanager_notification(alertmanager_alert(labels, {"summary": "bench"}, starts_at=FIRING_SINCE))


def _api(vigil: VigilProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{vigil.api_port}/api/v1",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=60,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
    )


async def _post_alert(
    client: httpx.AsyncClient, project_id: str, key: str, body: dict[str, Any], retried: list[int]
) -> dict[str, Any]:
    """One notification, sent again after a refusal as Alertmanager does (counted in `retried`)."""
    while True:
        answer = await client.post(
            f"/projects/{project_id}/alerts/alertmanager", json=body, headers={"X-API-Key": key}
        )
        if answer.status_code == 202:
            return dict(answer.json())
        if answer.status_code not in (429, 503):
            raise RuntimeError(f"alert refused: {answer.status_code} {answer.text[:500]}")
        retried.append(answer.status_code)
        await asyncio.sleep(0.1)


async def _workflows(
    api: httpx.AsyncClient, project_id: str, status: str | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 1000, **({"status": status} if status else {})}
    answer = await api.get(f"/projects/{project_id}/workflows", params=params)
    answer.raise_for_status()
    return list(answer.json())


async def _until(api: httpx.AsyncClient, project_id: str, status: str, count: int) -> float:
    """Poll until `count` workflows have `status`; the wall-clock time it was seen."""
    deadline = time.monotonic() + WAIT_S
    while len(await _workflows(api, project_id, status)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} workflows reached {status} in {WAIT_S:.0f} s")
        await asyncio.sleep(0.2)
    return time.time()


def _wall(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def _storm(vigil: VigilProcess, project_id: str, key: str) -> dict[str, Any]:
    async with _api(vigil) as api:
        (
            await api.put(f"/projects/{project_id}/runbooks/storm-notify", json=_notify_runbook("storm"))
        ).raise_for_status()
        bodies = [
            _alert("storm", f"Storm{i % STORM_ALERTS}", "supervised") for i in range(STORM_NOTIFICATIONS)
        ]
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        retried: list[int] = []
        incidents: set[str] = set()
        answer_s: list[float] = []

        async def sender() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                began = time.monotonic()
                out = await _post_alert(api, project_id, key, body, retried)
                answer_s.append(time.monotonic() - began)
                incidents.update(i["id"] for i in out["incidents"])

        window = CpuWindow({"vigil": vigil.pid, "nats-server": vigil.nats_pid})
        first_wall = time.time()
        window.start()
        await asyncio.gather(*(sender() for _ in range(STORM_SENDERS)))
        sent_s = time.time() - first_wall
        waiting_seen = await _until(api, project_id, "waiting_approval", STORM_ALERTS)
        window.stop()
        workflows = await _workflows(api, project_id)
        counts = []
        for incident_id in sorted(incidents):
            got = await api.get(f"/projects/{project_id}/incidents/{incident_id}")
            counts.append(int(got.json().get("notifications", 0)))
        details = [(await api.get(f"/projects/{project_id}/workflows/{w['id']}")).json() for w in workflows]
        waiting_at = [
            s["at"]
            for d in details
            for s in d["steps"]
            if (s["step"], s["status"]) == ("approval", "pending")
        ]
    answer_s.sort()
    return {
        "notifications": STORM_NOTIFICATIONS,
        "alerts": STORM_ALERTS,
        "senders": STORM_SENDERS,
        "sent_s": sent_s,
        "notifications_per_s": STORM_NOTIFICATIONS / sent_s,
        "answer_ms_p50": 1000 * median(answer_s),
        "answer_ms_p99": 1000 * _pct(answer_s, 0.99),
        "retried": len(retried),
        "incidents": len(incidents),
        "notifications_per_incident": counts,
        "workflows": len(workflows),
        "workflow_statuses": sorted({w["status"] for w in workflows}),
        "last_workflow_opened_s": max(_wall(w["started_at"]) for w in workflows) - first_wall,
        "last_waiting_s": (max(waiting_at) - first_wall) if waiting_at else None,
        "all_waiting_seen_s": waiting_seen - first_wall,
        "cores_used": window.cores_used,
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


async def _first_action(vigil: VigilProcess, project_id: str, key: str) -> dict[str, Any]:
    with ActionReceiver() as receiver:
        async with _api(vigil) as api:
            step = {"action": "http.request", "params": {"method": "POST", "url": f"{receiver.url}act"}}
            runbook = _runbook("act", "autonomous", step)
            (await api.put(f"/projects/{project_id}/runbooks/act-http", json=runbook)).raise_for_status()
            policy = {
                "actions": {"http": {"enabled": True, "dry_run": False, "url_prefixes": [receiver.url]}}
            }
            (await api.put(f"/projects/{project_id}/workflow-policy", json=policy)).raise_for_status()
            alone = dict(
                [await _one_action(api, receiver, project_id, key, f"Alone{i}") for i in range(SINGLE_ALERTS)]
            )
            single = sorted(receiver.arrivals[k] - began for k, (began, _) in alone.items())
            single_breakdown = await _breakdown(api, project_id, receiver, alone)
            smaller = {}
            for count in SMALLER_BURSTS:
                keys, window, _, _ = await _burst(
                    vigil, api, receiver, project_id, key, f"Burst{count}-", count
                )
                took = sorted(
                    receiver.arrivals[k] - began for k, (began, _) in keys.items() if k in receiver.arrivals
                )
                smaller[str(count)] = {
                    "acted": len(took),
                    "p50_s": median(took),
                    "p99_s": _pct(took, 0.99),
                    "vigil_cores": window.cores_used["vigil"],
                    "vigil_cpu_ms_per_alert": 1000 * window.cores_used["vigil"] * window.elapsed / count,
                }
            cpu_before = cpu_seconds(vigil.pid)
            keys, window, retried, main_thread_s = await _burst(
                vigil, api, receiver, project_id, key, "Act", ACT_ALERTS
            )
            await asyncio.sleep(SETTLE_S)  # the records after the actions, which may wait for others'
            cpu_all = cpu_seconds(vigil.pid) - cpu_before
            latencies = sorted(
                receiver.arrivals[k] - began for k, (began, _) in keys.items() if k in receiver.arrivals
            )
            answers = sorted(answered - began for began, answered in keys.values())
            breakdown = await _breakdown(api, project_id, receiver, keys)
    return {
        "alerts": ACT_ALERTS,
        "acted": len(latencies),
        "calls": receiver.calls,
        "retried": len(retried),
        "p50_s": median(latencies),
        "p99_s": _pct(latencies, 0.99),
        "max_s": latencies[-1],
        "answer_p50_s": median(answers),
        "answer_p99_s": _pct(answers, 0.99),
        "single_s": single,
        "single_breakdown_s": single_breakdown,
        "smaller_bursts": smaller,
        "breakdown_s": breakdown,
        "burst_s": window.elapsed,
        "cores_used": window.cores_used,
        "vigil_cpu_ms_per_alert": 1000 * window.cores_used["vigil"] * window.elapsed / ACT_ALERTS,
        "main_thread_ms_per_alert": 1000 * main_thread_s / ACT_ALERTS,
        "vigil_cpu_ms_per_alert_all": 1000 * cpu_all / ACT_ALERTS,
    }


async def _burst(
    vigil: VigilProcess,
    api: httpx.AsyncClient,
    receiver: ActionReceiver,
    project_id: str,
    key: str,
    prefix: str,
    count: int,
) -> tuple[dict[str, tuple[float, float]], CpuWindow, list[int], float]:
    """`count` autonomous alerts POSTed at once, waited for until every action call arrived:
    (idempotency key -> (POST start, POST answered)), the CPU used meanwhile, refusals, and the CPU
    seconds of `vigil up`'s main thread (its event loop; the rest is its threads')."""
    retried: list[int] = []

    async def fire(name: str) -> tuple[str, float, float]:
        began = time.monotonic()
        out = await _post_alert(api, project_id, key, _alert("act", name, "autonomous"), retried)
        return out["incidents"][0]["id"], began, time.monotonic()

    window = CpuWindow({"vigil": vigil.pid, "nats-server": vigil.nats_pid})
    window.start()
    main_before = main_thread_cpu_seconds(vigil.pid)
    fired = await asyncio.gather(*(fire(f"{prefix}{i}") for i in range(count)))
    keys = {f"wf-{incident}-0:step-0": (began, answered) for incident, began, answered in fired}
    for _ in range(int(WAIT_S / 0.05)):
        if all(k in receiver.arrivals for k in keys):
            break
        await asyncio.sleep(0.05)
    window.stop()
    return keys, window, retried, main_thread_cpu_seconds(vigil.pid) - main_before


async def _one_action(
    api: httpx.AsyncClient, receiver: ActionReceiver, project_id: str, key: str, name: str
) -> tuple[str, tuple[float, float]]:
    """One alert alone, waited for until its action call (the floor under concurrency)."""
    began = time.monotonic()
    out = await _post_alert(api, project_id, key, _alert("act", name, "autonomous"), [])
    answered = time.monotonic()
    wanted = f"wf-{out['incidents'][0]['id']}-0:step-0"
    while wanted not in receiver.arrivals:
        if time.monotonic() - began > 60:
            raise RuntimeError(f"no action call for {name}")
        await asyncio.sleep(0.005)
    return wanted, (began, answered)


async def _breakdown(
    api: httpx.AsyncClient, project_id: str, receiver: ActionReceiver, keys: dict[str, tuple[float, float]]
) -> dict[str, dict[str, float]]:
    """Where the time to the action call goes, from each workflow's own step records (wall clock,
    converted to the bench's monotonic clock): p50 and p99 of each stretch over the workflows."""
    offset = time.time() - time.monotonic()
    stretches: dict[str, list[float]] = {}
    for key, (began, answered) in keys.items():
        workflow_id = key.split(":")[0]
        detail = (await api.get(f"/projects/{project_id}/workflows/{workflow_id}")).json()
        at = {s["step"]: s["at"] - offset for s in detail["steps"]}
        opened = _wall(detail["started_at"]) - offset
        arrived = receiver.arrivals.get(f"{workflow_id}:step-0")
        marks = [
            ("POST answered (incident stored)", answered - began),
            ("answer -> workflow began (DBOS start)", opened - answered),
            ("began -> begin recorded (begin to plan: one step)", at.get("begin", opened) - opened),
            ("begin -> analyse recorded (runbook matched)", at.get("analyse", 0) - at.get("begin", 0)),
            ("analyse -> plan recorded (dry run)", at.get("plan", 0) - at.get("analyse", 0)),
            ("plan recorded -> action call arrives", (arrived or 0) - at.get("plan", 0)),
        ]
        for name, value in marks:
            stretches.setdefault(name, []).append(value)
    return {name: {"p50": median(v), "p99": _pct(v, 0.99)} for name, v in stretches.items()}


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def _checkpoints(data_dir: Path) -> int:
    """Steps DBOS has recorded so far (its `operation_outputs` rows), read beside the running process."""
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'workflows.db'}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM operation_outputs").fetchone()[0])


async def _memory(vigil: VigilProcess, project_id: str, key: str) -> dict[str, Any]:
    warm_project, warm_key = vigil.project_with_key("warm-up")
    async with _api(vigil) as api:
        for project in (project_id, warm_project):
            runbook = _notify_runbook("hold")
            (await api.put(f"/projects/{project}/runbooks/hold", json=runbook)).raise_for_status()
        retried: list[int] = []
        # a few first (in a project of their own, so that the count below is the 1,000), so that
        # code loaded and caches filled on first use are not counted
        for i in range(10):
            await _post_alert(api, warm_project, warm_key, _alert("hold", f"Warm{i}", "supervised"), retried)
        await _until(api, warm_project, "waiting_approval", 10)
        await asyncio.sleep(3)
        before = rss_bytes(vigil.pid)
        threads_before = _threads(vigil.pid)
        names = iter(range(MEMORY_WORKFLOWS))
        started = time.monotonic()

        async def sender() -> None:
            for i in names:
                await _post_alert(api, project_id, key, _alert("hold", f"Hold{i}", "supervised"), retried)

        await asyncio.gather(*(sender() for _ in range(MEMORY_SENDERS)))
        sent_s = time.monotonic() - started
        await _until(api, project_id, "waiting_approval", MEMORY_WORKFLOWS)
        all_waiting_s = time.monotonic() - started
        await asyncio.sleep(5)
        after = rss_bytes(vigil.pid)
        idle = CpuWindow({"vigil": vigil.pid, "nats-server": vigil.nats_pid})
        checkpoints = _checkpoints(vigil.data_dir)
        idle.start()
        await asyncio.sleep(IDLE_S)
        idle.stop()
        checkpoints_per_s = (_checkpoints(vigil.data_dir) - checkpoints) / idle.elapsed
        after_idle = rss_bytes(vigil.pid)
    files = {p.name: p.stat().st_size for p in vigil.data_dir.glob("*.db")}
    return {
        "workflows": MEMORY_WORKFLOWS,
        "sent_s": sent_s,
        "all_waiting_s": all_waiting_s,
        "rss_before": before,
        "rss_after": after,
        "rss_after_idle": after_idle,
        "mib_per_1000": (after - before) / MiB * 1000 / MEMORY_WORKFLOWS,
        "idle_cores": idle.cores_used,
        "idle_checkpoints_per_s": checkpoints_per_s,
        "threads_before": threads_before,
        "threads_after": _threads(vigil.pid),
        "retried": len(retried),
        "db_bytes": files,
    }


def _load(values: Any) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _cores(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def render(data: dict[str, Any]) -> tuple[str, list[tuple[str, str, str, bool]]]:
    """The page's section and its summary rows (what, target, measured, met)."""
    storm, act, memory = data["storm"], data["first_action"], data["memory"]
    counts = storm["notifications_per_incident"]
    storm_ok = (
        storm["incidents"] == STORM_ALERTS
        and storm["workflows"] == STORM_ALERTS
        and counts == [STORM_NOTIFICATIONS // STORM_ALERTS] * STORM_ALERTS
    )
    act_ok = act["acted"] == act["alerts"] and act["p99_s"] < TARGET_P99_S
    targets = [
        (
            f"Alert storm: {STORM_NOTIFICATIONS:,} notifications of {STORM_ALERTS} alerts",
            f"{STORM_ALERTS} incidents and workflows, {STORM_NOTIFICATIONS // STORM_ALERTS} notifications each",
            f"{storm['incidents']} incidents, {storm['workflows']} workflows, counts {min(counts)}-{max(counts)};"
            f" last workflow opened {storm['last_workflow_opened_s']:.2f} s after the first notification;"
            f" {storm['notifications_per_s']:,.0f} notifications/s",
            storm_ok,
        ),
        (
            f"Alert to first action, {ACT_ALERTS} concurrent autonomous alerts (rules engine)",
            "p99 < 1,000 ms",
            f"p99 {_ms(act['p99_s'])}, p50 {_ms(act['p50_s'])} ({act['acted']} of {act['alerts']} acted)",
            act_ok,
        ),
    ]
    alone = act["single_breakdown_s"]
    rows = "\n".join(
        f"| {name} | {alone[name]['p50'] * 1000:,.0f} | {value['p50'] * 1000:,.0f} | {value['p99'] * 1000:,.0f} |"
        for name, value in act["breakdown_s"].items()
    )
    single = ", ".join(_ms(s) for s in act["single_s"])
    last_waiting = "not seen" if storm["last_waiting_s"] is None else f"{storm['last_waiting_s']:.2f} s"
    smaller_text = "; ".join(
        f"{count} at once: p50 {_ms(b['p50_s'])}, p99 {_ms(b['p99_s'])} ({b['vigil_cpu_ms_per_alert']:,.0f} ms CPU per alert,"
        f" `vigil up` at {b['vigil_cores']:.2f} cores)"
        for count, b in act.get("smaller_bursts", {}).items()
    )
    grown = memory["rss_after"] - memory["rss_before"]
    section = f"""## k. Remediation workflow (alert storm, time to first action, open workflows)

`bench/workflow.py`; `.venv/bin/python bench/run.py --only workflow` refreshes this section alone.
Each part runs its own `vigil up` (a subprocess, default settings, SQLite: Vigil's database and
DBOS's `workflows.db` in the data directory) and sends Alertmanager webhooks (version 4, one alert
per notification) to `POST /api/v1/projects/{{id}}/alerts/alertmanager` with a project key.

**1. Alert storm.** {STORM_NOTIFICATIONS:,} notifications of {STORM_ALERTS} distinct alerts (round robin) from {STORM_SENDERS} concurrent senders;
a supervised notify-only runbook matches them, so each incident's workflow opens and waits for
approval. Sent in {storm["sent_s"]:.2f} s: **{storm["notifications_per_s"]:,.0f} notifications/s** (answer p50 {storm["answer_ms_p50"]:,.0f} ms,
p99 {storm["answer_ms_p99"]:,.0f} ms; {storm["retried"]} refused and sent again). Incidents opened: **{storm["incidents"]}**; workflows
opened: **{storm["workflows"]}** ({", ".join(storm["workflow_statuses"])}); notifications counted per incident: {", ".join(str(c) for c in counts)}.
From the first notification to the last workflow opened (its row's `started_at`):
**{storm["last_workflow_opened_s"]:.2f} s**; to the last approval requested: {last_waiting}. CPU (cores) from the first
notification until all {STORM_ALERTS} waited: {_cores(storm["cores_used"])}. Load average before / after:
{_load(storm["load_before"])}, {_load(storm["load_after"])}.

**2. Alert received to first action.** An autonomous runbook whose one step is an `http.request`
to a server in the bench process (its own thread and event loop), which notes when each
`Idempotency-Key` (`<workflow id>:step-0`) first arrives. {ACT_ALERTS} alerts with {ACT_ALERTS} fingerprints
are POSTed at once; per alert, from the start of its POST to its action call:
**p50 {_ms(act["p50_s"])}, p99 {_ms(act["p99_s"])}, max {_ms(act["max_s"])}** ({act["acted"]} of {act["alerts"]} acted; {act["calls"]} calls
received; the POSTs were answered in p50 {_ms(act["answer_p50_s"])}, p99 {_ms(act["answer_p99_s"])}). Target p99 < 1 s:
{"**PASS**" if act_ok else "**MISS**"}. One alert at a time (before the burst, {SINGLE_ALERTS} alerts): {single}. CPU (cores)
during the burst ({act["burst_s"]:.1f} s): {_cores(act["cores_used"])}, that is {act["vigil_cpu_ms_per_alert"]:,.0f} ms of `vigil up`'s CPU per alert until the last action call; with what each
workflow does after its action (its record, DBOS's checkpoints, which wait while others' first actions are still to
come), until {SETTLE_S:.0f} s after the last action call: {act.get("vigil_cpu_ms_per_alert_all", 0):,.0f} ms. Load average before / after: {_load(act["load_before"])}, {_load(act["load_after"])}.

Smaller bursts before it, in the same process: {smaller_text}.

Where the time goes, from each workflow's own step records (`steps[].at`, the workflow row's
`started_at`), over the {ACT_ALERTS} concurrent alerts:

| Stretch | alone, p50 (ms) | {ACT_ALERTS} at once, p50 (ms) | {ACT_ALERTS} at once, p99 (ms) |
|---|---|---|---|
{rows}

Profile (py-spy on `vigil up` during one run of this part, samples holding the GIL), on 2026-12-06 before the
changes below: about 65% was Vigil's own store work for the steps (SQLAlchemy ORM sessions on `vigil.db`: every
step loaded the workflow row, incident and policy again and recorded itself with three transactions), about 16%
DBOS's own checkpoints on `workflows.db`, the rest the HTTP intake, the action call and event-loop overhead. Since
then: each project's policy and runbooks are kept in the process (2 s, forgotten at once on a change made there);
a step's record (the workflow's row and `steps`, an event and an audit entry per step) and the alert intake's
transaction are each one hop to a thread holding a blocking SQLite connection, in SQLAlchemy Core, rather than an
ORM session with a round trip through aiosqlite per statement while the write lock is held; the first step makes
the workflow's row in that same transaction; an action step reads only the workflow's row; the trigger uses the
incidents the intake just stored; workflows start directly on the main event loop rather than through a polled DBOS
queue; JSON columns are decoded by orjson; FastAPI's own OpenTelemetry hooks are off. That took Vigil's statements
on `vigil.db` per alert, to its action, from 29 (4 transactions) to 15 (3), and its CPU per alert to about 40% of
what it was (measured one after the other on the same, loaded, machine); the learning from past cases, added since,
reads and writes 6 more (one more transaction) in the first step. A second pass on 2026-12-06 found
what the GIL-holding profile had hidden: DBOS's SQLite database ran in its default rollback-journal mode with full
sync, so each checkpoint (the workflow's start, `prepare`, `act`, the durable sleep) wrote a journal, synced it,
applied it, synced again and deleted it, and its commits queued on the disk. It now runs in WAL mode with
`synchronous=NORMAL`, as `vigil.db` does (durable across a crash of the process; see docs/workflow.md), on an engine
Vigil gives DBOS (no ping per checkout; 1 connection, not 20, since its every transaction takes the write lock
first, and more only wait in SQLite's busy handler): on the same loaded machine WAL alone took the CPU per alert
from about 31 to 20 ms and the p99 from 2.9 s to 2.4 s. (The note here before, that WAL "made no difference", was WAL
with full sync.) Then: past cases are kept per project in the process (a case recorded here joins them at once;
feedback, an answer or a workflow's end recorded here makes the next read fresh), the citations of an
investigation's tool calls are saved in one write, the action's HTTP call goes through the aiohttp client the agent
deliveries use, the intake checks its project inside its own transaction, and the objects made at start are frozen
out of the garbage collector. A third pass on 2026-12-06: the first step reads its incident and row in one
transaction and writes the learning case (one upsert) in its record's transaction; the action step takes the
planned row this process just recorded rather than reading it; the first action is taken in the DBOS step that
plans it when it follows at once (one DBOS step fewer: its check and its checkpoint); and while workflows are on
their way to their first action, what follows another's first action (its record, DBOS's checkpoints, the durable
sleep) waits, at most 2 s. On the loaded machine (load average 2 to 5, five alternating pairs of runs) that took
the statements per alert before the last action from about 32 to 19, `vigil up`'s CPU per alert until the last
action by about 35% (with the records after the actions, about 18%), and the p99 by about a quarter. What is left before an alert's action: the HTTP
intake and its transaction, DBOS's start and its step's check, the first step's read, its citations and its record
on `vigil.db`, the analysis, and the action call. Giving the workflows' transactions on `vigil.db` priority over
new alerts' intake lowered the p50 but raised the p99 (the last alerts' intake then came last), so it was left out.
A fourth pass on 2026-12-06: the statements every alert runs on `vigil.db` are made once (SQLAlchemy reuses their
compiled form instead of building and walking a new statement per call: about 100 µs less per statement), and
SQLite's transactions waiting together on the writer thread commit as one (a group commit); alternating with the
code before it (three pairs, the machine shared with other work), `vigil up`'s CPU per alert over the whole part
went from a median of 14.0 to 12.1 ms. Then DBOS's engine got one connection to `workflows.db` rather than 4: its
transactions then queue in the pool, which hands the connection over at once, rather than in SQLite's busy handler,
which sleeps (four alternating pairs, other work taking about 1.2 of the two cores: p99 median 1.46 to 1.03 s, CPU
per alert before the last action 10.5 to 8.3 ms; 1,000 open workflows' time and memory unchanged). Running the workflows in a process of their own beside the API was tried
(started by `vigil up`, alerts announced to it over the bus): the API's part fell to about 5 ms per alert, but the
workflows' process took about 14 ms per alert (the investigation's recent records then come over the bus, and two
processes contend for SQLite's write lock), more than both in one process, and the p99 got worse on this two-core
machine, so it was left out. Of `vigil up`'s CPU during the
burst, its main thread (the event loop: HTTP, steps, analysis) took {act["main_thread_ms_per_alert"]:,.1f} ms per alert and its threads (both
databases' statements) the rest. It is CPU work in one Python process, so at most one core
({act["cores_used"]["vigil"]:.2f} of the machine's cores here; other processes took {act["cores_used"]["other processes"]:.2f}): the {ACT_ALERTS} alerts need
about {act["vigil_cpu_ms_per_alert"] * ACT_ALERTS / 1000:.1f} CPU seconds before the last action, and a p99 under 1 s needs under about 10 ms
per alert.

**3. Memory per 1,000 open workflows.** After 10 warm-up workflows, {memory["workflows"]:,} supervised alerts (each its own
fingerprint) from {MEMORY_SENDERS} senders, sent in {memory["sent_s"]:.1f} s ({memory["workflows"] / memory["sent_s"]:.1f} alerts/s: each alert opens an incident and a workflow of its own, which analyses and plans before it waits); all {memory["workflows"]:,} workflows waited for approval
{memory["all_waiting_s"]:.1f} s after the first was sent. `vigil up`'s RSS: {memory["rss_before"] / MiB:,.0f} MiB before, {memory["rss_after"] / MiB:,.0f} MiB 5 s after
all waited ({memory["rss_after_idle"] / MiB:,.0f} MiB 10 s later): **{grown / MiB * 1000 / memory["workflows"]:,.1f} MiB per 1,000 open workflows** (peak
{memory["vigil_peak_rss"] / MiB:,.0f} MiB). The RSS counts what the process kept after opening them (allocator arenas
included), not only the waiting workflows' objects; the process went from {memory["threads_before"]} to {memory["threads_after"]} threads
(DBOS's step executor has no thread limit, and each waiting workflow's step holds one while it waits
for the connection to `workflows.db`). With all of them waiting and nothing sent, over
{IDLE_S:.0f} s: CPU (cores) {_cores(memory["idle_cores"])}; DBOS recorded **{memory["idle_checkpoints_per_s"]:,.0f} steps/s** (`operation_outputs`
rows, kept for good): each waiting workflow reads its approval as a step, then waits for a wake-up
for at most `APPROVAL_POLL_S` = {APPROVAL_POLL_S:.0f} s (`vigil.workflow.flow`), and each wait is recorded too. An answer
given in this process wakes its workflow at once; on SQLite, DBOS also looks for a message to each waiting
workflow every `SQLITE_WAKE_POLL_S` = {SQLITE_WAKE_POLL_S:.0f} s (`vigil.workflow.engine`), one transaction per
waiting workflow. (At DBOS's default of every second, a full run earlier on 2026-12-07 on this machine sent
the 1,000 alerts in 31.1 s, 32 alerts/s, and used 0.05 cores with all of them waiting.) Databases: {", ".join(f"{name} {size / MiB:,.1f} MiB" for name, size in sorted(memory["db_bytes"].items()))}.
Load average before / after: {_load(memory["load_before"])}, {_load(memory["load_after"])}.
"""
    return section, targets
