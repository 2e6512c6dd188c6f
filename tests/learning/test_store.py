"""Cases, feedback, their rewards and statistics in the database, on SQLite and on PostgreSQL, each
project apart from the others."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from vigil.errors import NotFound
from vigil.learning.features import Features
from vigil.learning.store import LearningStore, NewCase
from vigil.store.db import create_engine
from vigil.store.models import ApprovalRow, IncidentRow, WorkflowRow
from vigil.store.repo import Store, utcnow
from vigil.store.sealing import SecretBox
from vigil.workflow.approval_store import aware
from vigil.workflow.config_cache import config_cache
from vigil.workflow.store import WorkflowStore

PROBLEM = Features(
    exact=frozenset({"service:checkout", "label:alertname=CheckoutErrors"}), tokens=("checkout",)
)


async def workflow(
    store: Store, project_id: str, ident: str, status: str, *, decision: str | None = None
) -> None:
    now = utcnow()
    body = {"analysis": {"summary": "s"}, "runbook": {"id": "restart"}}
    async with store.session() as s:
        s.add(
            IncidentRow(
                id=f"inc-{ident}",
                project_id=project_id,
                status="open",
                severity="critical",
                title="t",
                opened_at=now,
                updated_at=now,
                body={},
            )
        )
        s.add(
            WorkflowRow(
                id=ident,
                project_id=project_id,
                incident_id=f"inc-{ident}",
                status=status,
                tier="supervised",
                runbook_id="restart",
                started_at=now,
                updated_at=now,
                body=body,
            )
        )
        if decision is not None:
            s.add(
                ApprovalRow(
                    id=f"{ident}:approval",
                    project_id=project_id,
                    workflow_id=ident,
                    incident_id=f"inc-{ident}",
                    runbook_id="restart",
                    status=decision,
                    requested_at=now,
                    expires_at=now,
                    decided_at=now,
                    decided_by="ana",
                    reason=None,
                    plan={},
                )
            )
        await s.commit()
    await LearningStore(store).record_case(
        project_id, ident, f"inc-{ident}", PROBLEM, "restart", "PoolExhausted"
    )


async def test_cases_carry_their_outcome_and_reward_within_their_project(store: Store) -> None:
    payments = (await store.create_project("payments")).id
    search = (await store.create_project("search")).id
    learning = LearningStore(store)
    await workflow(store, payments, "wf-1", "escalated", decision="rejected")
    await workflow(store, payments, "wf-2", "resolved", decision="approved")
    await workflow(store, search, "wf-3", "waiting_approval")

    await learning.add_feedback(payments, "wf-1:plan", rating=1, helpful=None, comment="no restart")
    await learning.add_feedback(payments, "wf-2:analysis", rating=None, helpful=True, comment=None)
    await learning.add_feedback(payments, "inc-wf-2", rating=5, helpful=True, comment="good")
    with pytest.raises(NotFound):
        await learning.add_feedback(search, "wf-1", rating=3, helpful=None, comment=None)

    cases = {c.workflow_id: c for c in await learning.cases(payments)}
    assert set(cases) == {"wf-1", "wf-2"} and cases["wf-1"].features == PROBLEM
    assert (
        cases["wf-1"].outcome,
        cases["wf-1"].reward,
        cases["wf-1"].plan_reward,
        cases["wf-1"].analysis_reward,
    ) == ("rejected", -5.0, -5.0, 0.0)
    # approved (+4), resolved (+1), helpful analysis (+1, not the plan's), the workflow rated 5 and helpful (+1)
    assert (
        cases["wf-2"].outcome,
        cases["wf-2"].reward,
        cases["wf-2"].plan_reward,
        cases["wf-2"].analysis_reward,
    ) == ("resolved", 7.0, 6.0, 2.0)
    assert cases["wf-1"].comments == ["no restart"] and cases["wf-2"].comments == ["good"]
    assert [c.workflow_id for c in await learning.cases(payments, leave_out="wf-2")] == ["wf-1"]
    [other] = await learning.cases(search)
    assert other.outcome == "open" and other.reward == 0.0

    stats = await learning.stats(payments)
    assert (stats["count"], stats["approvals"], stats["rejections"]) == (3, 1, 1)
    assert stats["reward"] == {
        "feedback": 1.0,
        "approvals": 4.0,
        "rejections": -4.0,
        "outcomes": 1.0,
        "total": 2.0,
    }
    assert (await learning.stats(search))["count"] == 0
    page = await learning.list_feedback(payments, limit=2)
    older = await learning.list_feedback(payments, limit=2, before_id=page[-1].id)
    assert [f.target_id for f in [*page, *older]] == ["inc-wf-2", "wf-2:analysis", "wf-1:plan"]


async def test_cases_are_kept_in_the_process_and_its_own_changes_seen_at_once(
    store: Store, database_url: str
) -> None:
    project = (await store.create_project("payments")).id
    learning = LearningStore(store)
    await workflow(store, project, "wf-1", "waiting_approval")
    [first] = await learning.cases(project)
    assert (first.workflow_id, first.reward) == ("wf-1", 0.0)

    elsewhere = Store(create_engine(database_url), SecretBox([Fernet.generate_key().decode()]))
    try:
        await LearningStore(elsewhere).add_feedback(project, "wf-1", rating=None, helpful=True, comment=None)
    finally:
        await elsewhere.close()
    # another process's feedback is seen once the kept cases expire (config_cache.TTL_S) ...
    assert [c.reward for c in await learning.cases(project)] == [0.0]
    # ... a case recorded here joins them at once, without reading them again ...
    await workflow(store, project, "wf-2", "running")
    assert [(c.workflow_id, c.reward) for c in await learning.cases(project)] == [
        ("wf-1", 0.0),
        ("wf-2", 0.0),
    ]
    # ... and feedback given here, or a workflow's end recorded here, makes the next read fresh
    await learning.add_feedback(project, "wf-1", rating=4, helpful=None, comment=None)
    assert [c.reward for c in await learning.cases(project)] == [1.5, 0.0]
    await WorkflowStore(store).record("wf-2", [], actor="test", columns={"status": "resolved"})
    cases = await learning.cases(project)
    assert [(c.outcome, c.reward) for c in cases] == [("open", 1.5), ("resolved", 1.0)]


async def test_a_case_written_again_is_rewritten_in_place(store: Store) -> None:
    project = (await store.create_project("payments")).id
    learning = LearningStore(store)
    await workflow(store, project, "wf-1", "running")
    [first] = await learning.cases(project)
    await learning.record_case(project, "wf-1", "inc-wf-1", PROBLEM, "scale-up", "Saturation")
    [again] = await learning.cases(project)
    assert (again.runbook_id, again.hypothesis) == ("scale-up", "Saturation")
    assert aware(again.created_at) == aware(first.created_at)  # SQLite reads them back naive
    config_cache(store).forget(project)
    [read] = await learning.cases(project)
    assert (read.runbook_id, read.hypothesis) == ("scale-up", "Saturation")
    assert aware(read.created_at) == aware(first.created_at)


async def test_a_workflow_record_writes_its_case_in_the_same_transaction(store: Store) -> None:
    project = (await store.create_project("payments")).id
    learning = LearningStore(store)
    await workflow(store, project, "wf-1", "running")
    assert [c.workflow_id for c in await learning.cases(project)] == ["wf-1"]  # held from here on
    workflows = WorkflowStore(store)
    row = workflows.new_workflow("wf-2", project, "inc-wf-1", "autonomous", {"steps": []})
    case = NewCase(store, project, "wf-2", "inc-wf-1", PROBLEM, "restart", "PoolExhausted")
    await workflows.record("wf-2", [("analyse", "done", {})], actor="vigil", create=lambda: row, case=case)
    held = await learning.cases(project)
    assert [c.workflow_id for c in held] == ["wf-1", "wf-2"]  # joined at once
    config_cache(store).forget(project)
    assert [c.workflow_id for c in await learning.cases(project)] == ["wf-1", "wf-2"]


async def test_a_case_that_cannot_be_written_leaves_the_workflow_record_whole(store: Store) -> None:
    project = (await store.create_project("payments")).id
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE learning_cases"))
    workflows = WorkflowStore(store)
    row = workflows.new_workflow("wf-1", project, "inc-1", "autonomous", {"steps": []})
    case = NewCase(store, project, "wf-1", "inc-1", PROBLEM, "restart", "PoolExhausted")
    await workflows.record("wf-1", [("analyse", "done", {})], actor="vigil", create=lambda: row, case=case)
    stored = await workflows.find_workflow("wf-1")
    assert stored is not None and [s["step"] for s in stored.body["steps"]] == ["analyse"]
