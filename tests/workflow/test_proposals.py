"""Proposals: the step chosen by name or number, the tier a proposal runs with (never less than
supervised), and a stored proposal started by the workflow sweep alone, as when the API that took
it runs in a process without the workflow engine."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import VigilHandle
from tests.mcp_server.test_http import NOTIFY_RUNBOOK, fire, put_runbook
from vigil.errors import ValidationFailed
from vigil.workflow.proposals import PROPOSED, Proposal, Proposals, choose_step, workflow_tier
from vigil.workflow.runbooks import RunbookSpec

SPEC = RunbookSpec.model_validate(NOTIFY_RUNBOOK)


def test_a_step_is_chosen_by_name_or_number_and_runs_alone() -> None:
    whole, index = choose_step(SPEC, None)
    assert whole == SPEC and index is None
    by_name, index = choose_step(SPEC, "note")
    assert index == 1 and [s.name for s in by_name.steps] == ["note"] and by_name.verify == SPEC.verify
    by_number, index = choose_step(SPEC, "1")
    assert index == 0 and [s.name for s in by_number.steps] == ["tell"]
    for unknown in ("3", "0", "restart", "-1"):
        with pytest.raises(ValidationFailed, match=r"its steps are 1 \(tell\), 2 \(note\)"):
            choose_step(SPEC, unknown)


def test_a_proposal_is_never_less_than_supervised() -> None:
    alert = {"kind": "alert", "tier": "autonomous"}
    assert workflow_tier(alert, "autonomous") == "supervised"
    assert workflow_tier({"kind": "alert", "tier": "human_only"}, "autonomous") == "human_only"
    assert workflow_tier({"kind": "alert", "tier": "bogus"}, "autonomous") == "human_only"
    assert workflow_tier({"kind": "detected"}, "autonomous") == "supervised"
    assert workflow_tier({"kind": "detected"}, "human_only") == "human_only"


async def test_a_stored_proposal_is_started_by_the_sweep(vigil: VigilHandle) -> None:
    shop, key = await vigil.project_with_key("shop")
    await put_runbook(vigil, shop, "tell-oncall", NOTIFY_RUNBOOK)
    incident_id = await fire(vigil, shop, key, "QueueBacklog")
    assert vigil.runtime.store is not None
    proposal = Proposal(incident_id=incident_id, runbook_id="tell-oncall", reason="because", by="mcp:test")
    row, created = await Proposals(vigil.runtime.store).propose(shop, proposal)  # nobody starts it
    assert created and row.status == PROPOSED and row.tier == "supervised"
    async with asyncio.timeout(30):
        while True:
            answer = await vigil.api.get(f"/api/v1/projects/{shop}/workflows/{row.id}")
            if answer.json()["status"] == "waiting_approval":
                break
            await asyncio.sleep(0.1)
    body = answer.json()
    assert body["analysis"]["engine"] == "proposal" and body["runbook_id"] == "tell-oncall"
    assert [p["description"] for p in body["plan"]] == [
        "notify (info): look at the queue",
        "notify (info): noted",
    ]
