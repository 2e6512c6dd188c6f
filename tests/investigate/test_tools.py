"""The investigation tools against a running Vigil and local servers speaking Prometheus, Loki,
Elasticsearch and Kubernetes: results, bounds, grep, redaction, budget, and citations that resolve."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import VigilHandle
from tests.investigate.tools_setup import POOL_ERROR, SERVICE, Setup, budget, context, investigation, settings
from vigil.agents.builtin.budget import BudgetExhausted
from vigil.errors import NotFound, ValidationFailed
from vigil.investigate.context import investigate_context
from vigil.investigate.tools import TOOLS, ToolDisabled, ToolFailed, ToolResult, enabled_tools, run_tool

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("recent_records", {"service": SERVICE, "severity": "error"}),
    ("templates", {}),
    ("signals", {"incident_id": "inc-pool"}),
    ("incidents", {"status": "open"}),
    ("evidence", {"fingerprint": "a1b2c3d4e5f60718"}),
    ("replays", {"incident_id": "inc-pool"}),
    ("prometheus_query", {"query": "up"}),
    ("prometheus_range", {"query": f'sum(rate(http_errors_total{{service="{SERVICE}"}}[5m]))'}),
    ("loki_query", {"query": f'{{app="{SERVICE}"}} |= "pool"'}),
    ("elasticsearch_search", {"query": f"service:{SERVICE} AND timeout"}),
    ("kubernetes", {"what": "pods", "label_selector": f"app={SERVICE}"}),
    ("kubernetes", {"what": "events"}),
    ("kubernetes", {"what": "rollouts", "name": SERVICE}),
]


async def _resolves(setup: Setup, result: ToolResult) -> None:
    for citation in result.citations():
        response = await setup.vigil.api.get(f"/api/v1/projects/{setup.project_id}/citations/{citation.id}")
        assert response.status_code == 200, (citation, response.text)


async def test_every_tool_answers_and_every_citation_resolves_through_the_api(vigil: VigilHandle) -> None:
    async with investigation(vigil) as setup:
        assert sorted(enabled_tools(setup.ctx)) == sorted(TOOLS)
        results = {}
        for name, args in CALLS:
            result = await run_tool(setup.ctx, name, setup.project_id, args)
            assert result.samples, (name, result)
            await _resolves(setup, result)
            results[(name, args.get("what"))] = result
        records = results[("recent_records", None)]
        assert records.counts["matched"] == 40 and records.counts["by_service"] == {SERVICE: 40}
        assert all("hunter2" not in s.text and s.citation is not None for s in records.samples)
        assert {s.fields["recent"] for s in results[("templates", None)].samples} == {40, 60}
        assert results[("prometheus_query", None)].counts["series"] == 30
        assert "last=4.2" in results[("prometheus_range", None)].samples[0].text
        loki = results[("loki_query", None)]
        assert loki.counts["lines"] == 30 and "pool wait 29" in loki.samples[0].text  # newest first
        assert all("ghp_" not in s.text for s in loki.samples)  # external lines are redacted too
        assert results[("elasticsearch_search", None)].counts["hits"] == 25
        pods = results[("kubernetes", "pods")]
        assert pods.counts["restarts"] == 7 and "CrashLoopBackOff" in pods.samples[0].text
        assert "BackOff" in results[("kubernetes", "events")].samples[0].text
        rollouts = results[("kubernetes", "rollouts")]
        assert rollouts.counts["revisions"] == 2 and "pay:1.1" in rollouts.samples[0].text

        logs = await run_tool(
            setup.ctx, "kubernetes", setup.project_id, {"what": "logs", "name": pods.samples[0].fields["pod"]}
        )
        assert logs.samples[0].text == "HikariPool-1 - Connection is not available"

        shown = await vigil.api.get(
            f"/api/v1/projects/{setup.project_id}/citations/{records.samples[0].citation.id}"
        )  # type: ignore[union-attr]
        assert "hunter2" not in shown.text and POOL_ERROR.split(" - ")[0] in shown.text
        elsewhere, other_key = await vigil.project_with_key("elsewhere")
        foreign = await vigil.api.get(f"/api/v1/projects/{elsewhere}/citations/{records.citation.id}")
        assert foreign.status_code == 404
        unknown = await vigil.api.get(f"/api/v1/projects/{setup.project_id}/citations/template:0000")
        assert unknown.status_code == 404
        as_key = await vigil.api.get(
            f"/api/v1/projects/{setup.project_id}/citations/{records.citation.id}",
            headers={"Authorization": "", "X-API-Key": other_key},
        )
        assert as_key.status_code == 403


async def test_bounds_counts_first_and_grep(vigil: VigilHandle) -> None:
    async with investigation(vigil) as setup:
        capped = await run_tool(
            setup.ctx, "prometheus_query", setup.project_id, {"query": "up", "max_lines": 5}
        )
        assert (
            capped.counts["series"] == 30
            and capped.total == 30
            and len(capped.samples) == 5
            and capped.truncated
        )
        by_bytes = await run_tool(
            setup.ctx, "loki_query", setup.project_id, {"query": f'{{app="{SERVICE}"}}', "max_bytes": 1024}
        )
        assert sum(len(s.text) for s in by_bytes.samples) <= 1024 and by_bytes.truncated
        assert by_bytes.counts["lines"] == 30
        grepped = await run_tool(
            setup.ctx, "prometheus_query", setup.project_id, {"query": "up", "grep": 'instance="a1[0-9]:'}
        )
        assert grepped.matched == 10 and len(grepped.samples) == 10 and not grepped.truncated
        assert grepped.counts["series"] == 30  # counts cover everything found, before the grep
        secret = await run_tool(setup.ctx, "recent_records", setup.project_id, {"grep": "hunter2"})
        assert secret.matched == 0
        with pytest.raises(ValidationFailed, match="grep"):
            await run_tool(setup.ctx, "loki_query", setup.project_id, {"query": '{a="b"}', "grep": "(x)\\1"})


async def test_tool_output_counts_against_the_incident_budget(vigil: VigilHandle) -> None:
    tokens = budget()
    async with investigation(vigil, tokens) as setup:
        result = await run_tool(
            setup.ctx, "recent_records", setup.project_id, {}, incident_key="incident:inc-pool"
        )
        used = (await tokens.usage(setup.project_id))["incidents"]["incident:inc-pool"]["tokens_total"]
        assert result.tokens > 0 and used == result.tokens

        tokens.set_limits(
            setup.project_id, type(tokens.limits_for(setup.project_id))(tokens_per_incident=used + 400)
        )
        counts_only = await run_tool(
            setup.ctx, "recent_records", setup.project_id, {}, incident_key="incident:inc-pool"
        )
        assert counts_only.samples == [] and counts_only.budget_note and counts_only.counts["matched"] == 100
        with pytest.raises(BudgetExhausted):
            await run_tool(
                setup.ctx, "recent_records", setup.project_id, {}, incident_key="incident:inc-pool"
            )
        spent = await investigate_context(setup.ctx, setup.project_id, setup.incident)
        assert spent.budget_exhausted and not spent.results


async def test_external_tools_are_off_without_their_url_and_failures_are_clear(vigil: VigilHandle) -> None:
    async with investigation(vigil) as setup:
        bare = context(vigil, settings(None, None, None, None))
        assert set(enabled_tools(bare)) == {
            "recent_records",
            "templates",
            "signals",
            "incidents",
            "evidence",
            "replays",
        }
        for name in (
            "prometheus_query",
            "prometheus_range",
            "loki_query",
            "elasticsearch_search",
            "kubernetes",
        ):
            with pytest.raises(ToolDisabled):
                await run_tool(
                    bare,
                    name,
                    setup.project_id,
                    {"query": "x", "what": "pods"} if name == "kubernetes" else {"query": "x"},
                )
        await bare.http.aclose()
        setup.prom.fail("rate(x[5m]", "1:10: parse error: unclosed left parenthesis")
        with pytest.raises(ToolFailed, match="parse error"):
            await run_tool(setup.ctx, "prometheus_query", setup.project_id, {"query": "rate(x[5m]"})
        with pytest.raises(ToolFailed, match="404"):
            await run_tool(setup.ctx, "kubernetes", setup.project_id, {"what": "rollouts", "name": "nope"})
        with pytest.raises(ToolFailed, match="namespace"):
            await run_tool(
                setup.ctx, "kubernetes", setup.project_id, {"what": "pods", "namespace": "kube-system"}
            )
        with pytest.raises(NotFound):
            await run_tool(setup.ctx, "no_such_tool", setup.project_id, {})
        # an index names indices only: nothing that would reach another endpoint of the server
        for index in ("logs/_delete_by_query?q=*&x=", "../_cluster"):
            with pytest.raises(ValidationFailed, match="index"):
                await run_tool(
                    setup.ctx, "elasticsearch_search", setup.project_id, {"query": "*", "index": index}
                )
        assert not any("delete" in path for path, _ in setup.es.searches)


async def test_investigate_context_runs_the_tools_in_order_with_citations(vigil: VigilHandle) -> None:
    async with investigation(vigil, budget()) as setup:
        found = await investigate_context(setup.ctx, setup.project_id, setup.incident)
        assert [r.tool for r in found.results] == [
            "recent_records",
            "recent_records",
            "templates",
            "signals",
            "prometheus_range",
            "loki_query",
            "kubernetes",
            "kubernetes",
            "kubernetes",
        ]
        errors = found.results[0]
        assert errors.args["service"] == SERVICE and errors.counts["matched"] == 40
        assert found.results[2].samples and found.results[3].counts["signals"] == 1
        assert not found.errors and found.budget_exhausted is None
        citations = found.citations()
        assert {c.kind for c in citations} >= {"query", "record", "template", "signal"}
        for result in found.results:
            await _resolves(setup, result)
        again = await investigate_context(setup.ctx, setup.project_id, setup.incident)
        assert [c.id for c in again.citations()] == [c.id for c in citations]  # deterministic
        assert "[record:" in found.summary()
