"""The routes the web UI added: renaming a project, paging back through incidents and outputs,
the overview's time series, test batches to an agent and a sink, and the live stream."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import VigilHandle
from tests.doubles.agent import AgentServer
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification
from tests.doubles.webhook_receiver import WebhookReceiver
from vigil.agents.builtin.budget import TokenUsage
from vigil.store.models import Batch, IncidentRow
from vigil.store.repo import utcnow


async def test_a_project_is_renamed_and_a_taken_name_refused(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key("shop")
    await vigil.project_with_key("billing")
    renamed = await vigil.api.patch(f"/api/v1/projects/{project_id}", json={"name": "shop-eu"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "shop-eu"
    taken = await vigil.api.patch(f"/api/v1/projects/{project_id}", json={"name": "billing"})
    assert taken.status_code == 409
    invalid = await vigil.api.patch(f"/api/v1/projects/{project_id}", json={"name": ""})
    assert invalid.status_code == 422 and invalid.json()["message"].startswith("name:")
    assert (await vigil.api.patch("/api/v1/projects/nope", json={"name": "x"})).status_code == 404


async def test_incidents_page_back_with_before(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    for name in ("A", "B", "C"):
        notification = alertmanager_notification(alertmanager_alert({"alertname": f"Alert{name}"}))
        answer = await vigil.receiver.post(
            f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
            json=notification,
            headers={"X-API-Key": key},
        )
        assert answer.status_code == 202, answer.text
        await asyncio.sleep(0.01)
    url = f"/api/v1/projects/{project_id}/incidents"
    first = (await vigil.api.get(url, params={"limit": 2})).json()
    rest = (await vigil.api.get(url, params={"limit": 2, "before": first[-1]["updated_at"]})).json()
    titles = [i["title"] for i in first + rest]
    assert len(titles) == 3 and len(set(titles)) == 3
    assert all(t.startswith(("AlertC", "AlertB", "AlertA")) for t in titles)
    assert titles[0].startswith("AlertC") and titles[-1].startswith("AlertA")
    stats = (await vigil.api.get(f"/api/v1/projects/{project_id}/stats")).json()
    assert stats["open_incidents"] == 3


async def a_batch(vigil: VigilHandle, project_id: str, request_id: str, records: int = 2) -> None:
    assert vigil.runtime.store is not None
    now = utcnow()
    await vigil.runtime.store.add_batches(
        [
            Batch(
                request_id=request_id,
                project_id=project_id,
                pipeline="errors",
                record_count=records,
                represented=records * 3,
                records=[{"body": f"declined {n}"} for n in range(records)],
                status="delivered",
                attempts=1,
                last_error=None,
                created_at=now,
                updated_at=now,
            )
        ]
    )


async def test_outputs_page_back_and_the_time_series_counts_them(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    for n in range(3):
        await a_batch(vigil, project_id, f"req-{n}")
        posted = await vigil.receiver.post(
            "/internal/agent-output",
            json={"request_id": f"req-{n}", "payload": {"n": n}},
            headers={"X-API-Key": key},
        )
        assert posted.status_code == 200, posted.text
    url = f"/api/v1/projects/{project_id}/outputs"
    # outputs are accepted onto the bus and stored from there: wait for all three
    deadline = asyncio.get_running_loop().time() + 20
    while len((await vigil.api.get(url)).json()) < 3:
        assert asyncio.get_running_loop().time() < deadline, "the outputs were not all stored"
        await asyncio.sleep(0.1)
    first = (await vigil.api.get(url, params={"limit": 2, "batch": "false"})).json()
    assert [o["payload"]["n"] for o in first] == [2, 1] and all(o["batch"] is None for o in first)
    rest = (await vigil.api.get(url, params={"limit": 2, "before": first[-1]["received_at"]})).json()
    assert [o["payload"]["n"] for o in rest] == [0] and rest[0]["batch"]["request_id"] == "req-0"
    assert vigil.runtime.store is not None
    async with vigil.runtime.store.session() as session:
        session.add(TokenUsage(project_id=project_id, day=utcnow().date(), incident_key="inc-1", tokens=1234))
        await session.commit()
    series = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/timeseries", params={"hours": 1, "buckets": 4})
    ).json()
    assert [d["tokens"] for d in series["tokens_by_day"]] == [0, 0, 0, 0, 0, 0, 1234]
    assert len(series["buckets"]) == 4
    last = series["buckets"][-1]
    assert (last["outputs"], last["batches"], last["delivered"], last["records"], last["deduplicated"]) == (
        3,
        3,
        3,
        18,
        12,
    )
    assert last["latency_ms_p95"] == 0.0
    assert (
        await vigil.api.get(f"/api/v1/projects/{project_id}/timeseries", params={"buckets": 0})
    ).status_code == 422


async def test_a_test_batch_shows_the_agents_answer_and_a_sinks(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    base = f"/api/v1/projects/{project_id}"
    with AgentServer() as agent:
        spec = {"agent": {"endpoint": agent.url, "headers": {"Authorization": "Bearer agent-secret"}}}
        assert (await vigil.api.put(f"{base}/pipelines/errors", json=spec)).status_code == 200
        answer = (await vigil.api.post(f"{base}/pipelines/errors/test")).json()
        assert answer["ok"] and answer["status"] == 200 and answer["body"] == '{"status":"ok"}'
        [(request, records)] = agent.batches()
        assert request.header("authorization") == "Bearer agent-secret"  # the stored header, in clear
        assert request.header("x-project-id") == project_id and len(records) == 1
        agent.fail_next(1, status=400, body="bad batch shape")
        refused = (await vigil.api.post(f"{base}/pipelines/errors/test")).json()
        assert not refused["ok"] and refused["status"] == 400 and "bad batch shape" in refused["body"]
    assert (await vigil.api.get(f"{base}/batches")).json() == []  # nothing stored
    async with WebhookReceiver(secret="whsec") as hook:
        sink = (
            await vigil.api.post(
                f"{base}/sinks", json={"type": "webhook", "url": hook.url, "secret": "whsec"}
            )
        ).json()
        taken = (await vigil.api.post(f"{base}/sinks/{sink['id']}/test")).json()
        assert taken["ok"], taken
        [delivered] = hook.requests
        assert hook.verify(delivered) and delivered.json()["payload"]["test"] is True
        hook.fail_next(1, status=500)
        failed = (await vigil.api.post(f"{base}/sinks/{sink['id']}/test")).json()
        assert not failed["ok"] and "HTTP 500" in failed["message"]
    assert (await vigil.api.post(f"{base}/pipelines/missing/test")).status_code == 404
    audit = (await vigil.api.get(f"{base}/audit", params={"kind": "test."})).json()
    assert sorted({(a["kind"], a["subject"]) for a in audit}) == [
        ("test.pipeline", "errors"),
        ("test.sink", sink["id"]),
    ]


async def test_the_live_stream_sends_batches_and_outputs_as_they_are_stored(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    events: list[str] = []
    ids: list[str] = []
    since = utcnow().isoformat()

    async def listen() -> None:
        live = f"/api/v1/projects/{project_id}/live"
        async with vigil.api.stream("GET", live, params={"since": since}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    events.append(line[6:].strip())
                if line.startswith("id:"):
                    ids.append(line[3:].strip())
                if "output" in events:
                    return

    listening = asyncio.create_task(listen())
    await a_batch(vigil, project_id, "req-live")
    posted = await vigil.receiver.post(
        "/internal/agent-output",
        json={"request_id": "req-live", "payload": {"ok": True}},
        headers={"X-API-Key": key},
    )
    assert posted.status_code == 200
    await asyncio.wait_for(listening, 20)
    assert events[:2] == ["batch", "output"]
    # a browser that reconnects sends the last id it saw: only what came after it is sent again
    resumed: list[str] = []
    async with vigil.api.stream(
        "GET",
        f"/api/v1/projects/{project_id}/live",
        params={"since": since},
        headers={"Last-Event-ID": ids[0]},
    ) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                resumed.append(line[6:].strip())
                break
    assert resumed == ["output"]
    async with httpx.AsyncClient(base_url=vigil.api_url) as stranger:
        assert (await stranger.get(f"/api/v1/projects/{project_id}/live")).status_code == 401


async def test_paging_back_keeps_incidents_that_share_the_boundary_time(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    assert vigil.runtime.store is not None
    moment = utcnow()
    async with vigil.runtime.store.session() as session:
        for n in range(5):
            session.add(
                IncidentRow(
                    id=f"same-{n}",
                    project_id=project_id,
                    status="open",
                    severity="warning",
                    title=f"incident {n}",
                    opened_at=moment,
                    updated_at=moment,
                    body={"id": f"same-{n}", "status": "open"},
                )
            )
        await session.commit()
    url = f"/api/v1/projects/{project_id}/incidents"
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    for _ in range(5):
        answer = await vigil.api.get(url, params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        if not page:
            break
        seen += [i["id"] for i in page]
        params = {"limit": 2, **page[-1]["page"]}
    assert seen == [f"same-{n}" for n in (4, 3, 2, 1, 0)]
