"""The web UI's list calls with a large store: 10,000 incidents and 100,000 outputs (and 20,000
batches, 2,000 dead letters, 10,000 audit entries) written into `vigil up`'s database, then each
call the UI's pages make, through a signed-in session as the browser sends them: p50 and p95 over
repeated calls. Target: p95 under 300 ms for each list call."""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy
from output import print_json
from servers import ADMIN_TOKEN, REPO, VigilProcess

from vigil.store.models import AuditEntry, Batch, DeadLetter, IncidentRow, Output

sys.path.insert(0, str(REPO))

INCIDENTS = 10_000
OUTPUTS = 100_000
BATCHES = 20_000
DEAD_LETTERS = 2_000
AUDIT = 10_000
SPREAD = timedelta(days=14)
CALLS = 40
WARMUP = 5
TARGET_P95_S = 0.3


def _moments(count: int, now: datetime) -> list[datetime]:
    step = SPREAD / count
    return [now - SPREAD + step * i for i in range(count)]


def seed(database: Path, project_id: str) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    now = datetime.now(UTC)
    with engine.begin() as db:
        incidents = []
        for i, at in enumerate(_moments(INCIDENTS, now)):
            status = "open" if i % 10 == 0 else "resolved"
            body = {
                "id": f"inc-{i:05d}",
                "title": f"error rate spike on endpoint /api/{i % 50}",
                "severity": ("critical", "warning", "info")[i % 3],
                "status": status,
                "services": [f"service-{i % 20}"],
                "opened_at": at.timestamp(),
                "updated_at": at.timestamp() + 60,
                "resolved_at": None if status == "open" else at.timestamp() + 600,
                "reopened": 0,
                "signals": [],
                "timeline": [],
            }
            incidents.append(
                {
                    "id": body["id"],
                    "project_id": project_id,
                    "status": status,
                    "severity": body["severity"],
                    "title": body["title"],
                    "opened_at": at,
                    "updated_at": at + timedelta(seconds=60),
                    "body": body,
                }
            )
        db.execute(sqlalchemy.insert(IncidentRow.__table__), incidents)
        batches = [
            {
                "request_id": f"req-{i:06d}",
                "project_id": project_id,
                "pipeline": "errors",
                "record_count": 10,
                "represented": 40,
                "records": [{"body": f"payment declined {n}", "severity": "ERROR"} for n in range(10)],
                "status": "delivered" if i % 50 else "dead",
                "attempts": 1,
                "last_error": None,
                "created_at": at,
                "updated_at": at + timedelta(milliseconds=80),
            }
            for i, at in enumerate(_moments(BATCHES, now))
        ]
        db.execute(sqlalchemy.insert(Batch.__table__), batches)
        outputs = [
            {
                "id": str(uuid.uuid4()),
                "project_id": project_id,
                "request_id": f"req-{i % BATCHES:06d}",
                "pipeline": "errors",
                "idempotency_key": None,
                "payload": {"summary": f"10 error records from checkout ({i})", "severity": "critical"},
                "received_at": at,
            }
            for i, at in enumerate(_moments(OUTPUTS, now))
        ]
        db.execute(sqlalchemy.insert(Output.__table__), outputs)
        letters = [
            {
                "id": str(uuid.uuid4()),
                "project_id": project_id,
                "kind": "batch",
                "target": "errors",
                "ref": f"req-{i:06d}",
                "subject": "batches",
                "message": "{}",
                "error": "agent http://agent/process: HTTP 400",
                "attempts": 1,
                "created_at": at,
                "replayed_at": None,
            }
            for i, at in enumerate(_moments(DEAD_LETTERS, now))
        ]
        db.execute(sqlalchemy.insert(DeadLetter.__table__), letters)
        audit = [
            {
                "project_id": project_id,
                "at": at,
                "actor": "admin",
                "kind": "config.pipeline",
                "subject": "errors",
                "detail": {"method": "PUT"},
            }
            for at in _moments(AUDIT, now)
        ]
        db.execute(sqlalchemy.insert(AuditEntry.__table__), audit)
    engine.dispose()


def _calls(project_id: str, older: str) -> dict[str, str]:
    base = f"/api/v1/projects/{project_id}"
    return {
        "incidents, first page (50)": f"{base}/incidents?limit=50",
        "incidents, open (50)": f"{base}/incidents?limit=50&status=open",
        "incidents, a page far back (50)": f"{base}/incidents?limit=50&before={older}",
        "outputs, newest (20)": f"{base}/outputs?limit=20&batch=false",
        "outputs, a page far back (20)": f"{base}/outputs?limit=20&batch=false&before={older}",
        "batches with records (20)": f"{base}/batches?limit=20&records=true",
        "dead letters (200)": f"{base}/dead-letters?limit=200",
        "audit log (100)": f"{base}/audit?limit=100",
        "approvals waiting": "/api/v1/approvals?status=pending",
        "stats": f"{base}/stats",
        "overview time series (24 h)": f"{base}/timeseries?hours=24&buckets=24",
    }


def measure(client: httpx.Client, path: str) -> dict[str, float]:
    for _ in range(WARMUP):
        client.get(path).raise_for_status()
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append(time.perf_counter() - started)
    times.sort()
    return {"p50_s": statistics.median(times), "p95_s": times[int(0.95 * len(times)) - 1]}


def run(tmp: Path) -> dict[str, Any]:
    vigil = VigilProcess(tmp / "ui")
    vigil.start()
    try:
        project_id, _ = vigil.project_with_key("shop")
        started = time.perf_counter()
        seed(vigil.data_dir / "vigil.db", project_id)
        seeded_s = time.perf_counter() - started
        older = (datetime.now(UTC) - SPREAD / 2).strftime("%Y-%m-%dT%H:%M:%SZ")
        with httpx.Client(base_url=f"http://127.0.0.1:{vigil.api_port}", timeout=30) as browser:
            browser.post("/ui/session", json={"token": ADMIN_TOKEN}).raise_for_status()
            results = {name: measure(browser, path) for name, path in _calls(project_id, older).items()}
    finally:
        vigil.stop()
    return {
        "stored": {
            "incidents": INCIDENTS,
            "outputs": OUTPUTS,
            "batches": BATCHES,
            "dead_letters": DEAD_LETTERS,
            "audit": AUDIT,
        },
        "seeded_s": seeded_s,
        "calls": results,
    }


def render(data: dict[str, Any]) -> tuple[str, list[tuple[str, str, str, bool]]]:
    calls = data["calls"]
    lists = {name: c for name, c in calls.items() if not name.startswith("overview")}
    worst = max(lists.items(), key=lambda item: item[1]["p95_s"])
    ok = worst[1]["p95_s"] < TARGET_P95_S
    rows = "\n".join(
        f"| {name} | {c['p50_s'] * 1000:,.1f} | {c['p95_s'] * 1000:,.1f} |" for name, c in calls.items()
    )
    stored = data["stored"]
    target = (
        f"Web UI list calls with {stored['incidents']:,} incidents and {stored['outputs']:,} outputs stored",
        "p95 < 300 ms each",
        f"worst p95 {worst[1]['p95_s'] * 1000:,.0f} ms ({worst[0]})",
        ok,
    )
    section = f"""## m. Web UI list calls with a large store

`bench/ui.py`: {stored["incidents"]:,} incidents, {stored["outputs"]:,} outputs, {stored["batches"]:,} batches,
{stored["dead_letters"]:,} dead letters and {stored["audit"]:,} audit entries, spread over 14 days, written into
`vigil up`'s SQLite database; then each call the UI's pages make, {CALLS} times in a row (after {WARMUP}
warm-up calls) through a signed-in session cookie, one at a time. Every list is paginated (`limit`, and
`before` to page back), so a page's cost does not grow with what is stored; the overview's time series reads
the last 24 hours only.

| Call | p50 (ms) | p95 (ms) |
|---|---|---|
{rows}
"""
    return section, [target]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vigil-bench-ui-") as name:
        result = run(Path(name))
    print_json(result, indent=1)
    print(render(result)[0])
