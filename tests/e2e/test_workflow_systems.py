"""The workflow against local servers speaking the Docker Engine API, Prometheus's query API and
each ticket system: a container restarted once, verification by PromQL, and every step on the
ticket, which is closed when the problem cleared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from tests.conftest import VigilHandle
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification
from tests.doubles.docker_server import DockerServer
from tests.doubles.github_server import GitHubServer
from tests.doubles.gitlab_server import GitLabServer
from tests.doubles.jira_server import JiraServer
from tests.doubles.linear_server import LinearServer
from tests.doubles.prometheus_server import PrometheusServer
from tests.e2e.test_workflow import workflow_of

CLEARED = 'sum(rate(http_requests_total{service="cart",code=~"5.."}[1m])) < 1'

Comments = Callable[[], list[str]]
State = Callable[[], str]


@asynccontextmanager
async def ticket_system(kind: str) -> AsyncIterator[tuple[dict[str, Any], Comments, State]]:
    """The spec Vigil is given, and how to read the ticket's comments and state on the server."""
    if kind == "github":
        async with GitHubServer(token="ghp_t", repos=["acme/shop"]) as gh:
            spec = {
                "type": "github",
                "base_url": gh.api_url,
                "repo": "acme/shop",
                "token": "ghp_t",
                "seconds_between_requests": 0,
                "seconds_between_writes": 0,
            }
            yield spec, lambda: gh.comments("acme/shop", 1), lambda: gh.issue("acme/shop", 1).state
    elif kind == "gitlab":
        async with GitLabServer(token="glpat-t", projects=["acme/shop"]) as gl:
            spec = {"type": "gitlab", "url": gl.base_url, "project": "acme/shop", "token": "glpat-t"}
            yield spec, lambda: gl.notes("acme/shop", 1), lambda: gl.issue("acme/shop", 1).state
    elif kind == "jira":
        async with JiraServer(token="jira-t", projects=["OPS"]) as jira:
            spec = {"type": "jira", "url": jira.base_url, "project": "OPS", "token": "jira-t"}
            yield spec, lambda: jira.comments("OPS-1"), lambda: jira.issue("OPS-1").status
    else:
        async with LinearServer(api_key="lin_api_t", teams={"OPS": "Operations"}) as linear:
            spec = {
                "type": "linear",
                "url": f"{linear.base_url}/graphql",
                "api_key": "lin_api_t",
                "team": "OPS",
            }
            yield spec, lambda: linear.comments("OPS-1"), lambda: linear.issue("OPS-1").state


@pytest.mark.parametrize("tickets", ["github", "gitlab", "jira", "linear"])
async def test_docker_restart_verified_by_promql_with_a_ticket(vigil: VigilHandle, tickets: str) -> None:
    async with AsyncExitStack() as stack:
        engine = await stack.enter_async_context(DockerServer())
        engine.add_container("cart", image="cart:2.1")
        prometheus = await stack.enter_async_context(PrometheusServer())
        spec, comments, state = await stack.enter_async_context(ticket_system(tickets))

        project_id, key = await vigil.project_with_key()
        runbook = {
            "match": {"alert_labels": {"alertname": "CartErrors"}},
            "tier": "autonomous",
            "steps": [{"action": "docker.restart", "params": {"container": "cart"}}],
            "verify": {"after_s": 0.5, "timeout_s": 20, "alert_resolved": False, "promql": CLEARED},
        }
        assert (
            await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/cart", json=runbook)
        ).status_code == 201
        policy = {
            "prometheus_url": prometheus.base_url,
            "tickets": spec,
            "actions": {
                "docker": {
                    "enabled": True,
                    "dry_run": False,
                    "containers": ["cart"],
                    "connection": {"base_url": engine.docker_url},
                }
            },
        }
        answer = await vigil.api.put(f"/api/v1/projects/{project_id}/workflow-policy", json=policy)
        assert answer.status_code == 200, answer.text

        alert = alertmanager_alert({"alertname": "CartErrors", "service": "cart", "tier": "autonomous"})
        sent = await vigil.receiver.post(
            f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
            json=alertmanager_notification(alert),
            headers={"X-API-Key": key},
        )
        assert sent.status_code == 202
        deadline = asyncio.get_running_loop().time() + 30
        while CLEARED not in prometheus.queries:  # acted, and verifying: not cleared yet
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        assert engine.restarts("cart") == 1
        prometheus.set(CLEARED, 0.2)  # the error rate fell
        [incident] = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()
        done = await workflow_of(vigil, project_id, incident["id"], "resolved")

        assert engine.restarts("cart") == 1
        steps = [(s["step"], s["status"]) for s in done["steps"]]
        assert ("verify", "not_cleared") in steps and steps[-2:] == [
            ("verify", "cleared"),
            ("finish", "resolved"),
        ]
        deadline = asyncio.get_running_loop().time() + 20
        while state().lower() not in ("closed", "done"):  # closed after the finish step
            assert asyncio.get_running_loop().time() < deadline, state()
            await asyncio.sleep(0.1)
        posted = comments()
        for step in ("analyse", "plan", "execute", "verify"):
            assert any(c.startswith(f"**{step}**") for c in posted), (step, posted)
        assert any("resolved" in c for c in posted)
