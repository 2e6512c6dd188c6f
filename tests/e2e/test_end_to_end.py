"""OTLP in through the real OpenTelemetry exporters, batches to a real agent, its outputs back
through the SDK, and on to a signed webhook and a Slack-compatible server."""

from __future__ import annotations

import asyncio

from tests.conftest import VigilHandle
from tests.doubles.agent import AgentServer
from tests.doubles.slack_server import SlackServer
from tests.doubles.webhook_receiver import WebhookReceiver
from tests.otel import OtelLogs

PIPELINE = {
    "filter": {"min_severity": "ERROR", "services": ["payment-service"]},
    "batch": {"max_records": 10, "max_wait_ms": 500},
    "agent": {"endpoint": "", "timeout_s": 30},
}


async def wait_until(predicate, timeout_s: float = 30.0, interval_s: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_s)


async def test_otlp_to_agent_to_webhook_and_slack(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    async with (
        AgentServer(vigil_endpoint=vigil.receiver_url, api_key=key) as agent,
        WebhookReceiver(secret="whsec-test") as webhook,
        SlackServer() as slack,
    ):
        pipeline = {**PIPELINE, "agent": {"endpoint": agent.url, "timeout_s": 30}}
        response = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=pipeline)
        assert response.status_code == 200, response.text
        for sink in (
            {"type": "webhook", "url": webhook.url, "secret": "whsec-test"},
            {"type": "slack", "webhook_url": slack.url},
        ):
            response = await vigil.api.post(f"/api/v1/projects/{project_id}/sinks", json=sink)
            assert response.status_code == 201, response.text

        payments_http = OtelLogs("payment-service", api_key=key, http_url=vigil.receiver_url)
        payments_grpc = OtelLogs("payment-service", api_key=key, grpc_target=vigil.grpc_target)
        checkout = OtelLogs("checkout", api_key=key, grpc_target=vigil.grpc_target)

        def emit() -> None:
            for i in range(23):
                payments_http.logger.error(
                    "Connection refused: database pool exhausted (%d)", i, extra={"attempt": i}
                )
                payments_http.logger.info("payment %d accepted", i)
            for i in range(9):
                payments_grpc.logger.critical("Timeout waiting for DB connection after 30s (%d)", i)
                checkout.logger.error("cart service unavailable (%d)", i)
            for logs in (payments_http, payments_grpc, checkout):
                logs.close()

        await asyncio.to_thread(emit)

        await wait_until(lambda: sum(len(b) for _, b in agent.batches()) >= 32)
        await asyncio.sleep(1.0)  # anything extra would arrive now
        batches = agent.batches()
        records = [r for _, b in batches for r in b]
        assert len(records) == 32
        assert all(1 <= len(b) <= 10 for _, b in batches)
        assert {r["resourceAttributes"]["service.name"] for r in records} == {"payment-service"}
        assert all(r["severityNumber"] >= 17 for r in records)
        bodies = sorted(r["body"] for r in records)
        assert bodies[0].startswith("Connection refused") and bodies[-1].startswith("Timeout waiting")
        first = records[0]
        assert set(first) == {
            "resourceAttributes",
            "severityNumber",
            "severityText",
            "body",
            "attributes",
            "traceId",
            "spanId",
            "timestamp",
            "template_id",
            "template",
        }
        assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
        request_ids = set()
        for request, _ in batches:
            assert request.header("content-type") == "application/json"
            assert request.header("x-project-id") == project_id
            request_ids.add(request.header("x-request-id"))
        assert len(request_ids) == len(batches)

        deliveries = await webhook.wait_for(len(batches), timeout_s=30)
        assert all(webhook.verify(d) for d in deliveries)
        assert {d.json()["request_id"] for d in deliveries} == request_ids
        assert {d.json()["payload"]["severity"] for d in deliveries} == {"critical"}
        messages = await slack.wait_for(len(batches), timeout_s=30)
        assert all(m.error is None for m in messages)
        assert "Database connection pool exhausted" in messages[0].body.decode()

        listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/outputs")).json()
        assert {o["request_id"] for o in listed} == request_ids
        assert all(o["batch"]["record_count"] == len(o["batch"]["records"]) for o in listed)
