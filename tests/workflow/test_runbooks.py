"""Runbooks: their format, matching, the API (JSON and YAML), the runbooks folder and the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import VigilHandle, make_settings, running
from vigil.errors import ValidationFailed
from vigil.workflow.runbooks import MatchContext, Runbook, RunbookSpec, parse_runbook, ranked

RESTART = """
id: restart-checkout
title: Restart checkout
match:
  alert_labels: {alertname: CheckoutErrors}
  services: [checkout]
tier: supervised
steps:
  - action: kubernetes.rollout_restart
    params: {namespace: shop, deployment: checkout}
verify:
  after_s: 30
  promql: sum(rate(errors_total[1m])) < 1
"""


def runbook(ident: str, **match: object) -> Runbook:
    return Runbook(
        id=ident,
        spec=RunbookSpec.model_validate(
            {"match": match, "steps": [{"action": "notify", "params": {"message": "hi"}}]}
        ),
    )


def test_a_runbook_parses_with_defaults() -> None:
    parsed = parse_runbook(RESTART, "restart.yaml")
    assert parsed.id == "restart-checkout"
    [step] = parsed.spec.steps
    assert (step.action, step.params, step.required, step.inverse) == (
        "kubernetes.rollout_restart",
        {"namespace": "shop", "deployment": "checkout"},
        True,
        "auto",
    )
    assert parsed.spec.verify.after_s == 30 and parsed.spec.verify.alert_resolved


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps: []", "steps"),
        ("id: x\nsteps: [{action: 'rm -rf /'}]", "steps.0.action"),
        ("id: x\ntier: yolo\nsteps: [{action: notify, params: {message: hi}}]", "tier"),
        ("id: x\nsteps: [{action: notify, params: {message: hi}, shell: echo}]", "shell"),
        (
            "id: x\nmatch: {alert_labels: {a: {regex: '('}}}\nsteps: [{action: notify, params: {message: hi}}]",
            "regex",
        ),
        ("- just a list", "mapping"),
        ("id: [", "YAML"),
    ],
)
def test_bad_runbooks_are_refused_naming_the_field(text: str, expected: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_runbook(text, "bad.yaml", "fallback")
    assert expected in refused.value.message and "bad.yaml" in refused.value.message


def test_matching_needs_every_criterion_and_ranks_the_most_specific_first() -> None:
    books = [
        runbook("generic", services=["checkout"]),
        runbook("specific", services=["checkout"], alert_labels={"alertname": "CheckoutErrors"}),
        runbook("regex", alert_labels={"alertname": {"regex": "^Checkout"}}),
        runbook("other", services=["payments"]),
        runbook("signal", signal_kinds=["latency_regression"]),
    ]
    context = MatchContext(alert_labels={"alertname": "CheckoutErrors"}, services=["checkout"])
    assert [(b.id, s) for b, s in ranked(books, context)] == [("specific", 2), ("generic", 1), ("regex", 1)]
    detected = MatchContext(services=["checkout"], signal_kinds=["latency_regression"])
    assert [b.id for b, _ in ranked(books, detected)] == ["generic", "signal"]


async def test_runbooks_through_the_api_in_json_and_yaml_with_an_audit_trail(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    base = f"/api/v1/projects/{project_id}/runbooks"
    created = await vigil.api.put(
        f"{base}/restart-checkout", content=RESTART, headers={"Content-Type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["steps"][0]["action"] == "kubernetes.rollout_restart"
    replaced = await vigil.api.put(
        f"{base}/restart-checkout",
        json={"steps": [{"action": "notify", "params": {"message": "hi"}}], "tier": "autonomous"},
    )
    assert replaced.status_code == 200, replaced.text
    assert (await vigil.api.get(f"{base}/restart-checkout")).json()["spec"]["tier"] == "autonomous"
    assert [r["id"] for r in (await vigil.api.get(base)).json()] == ["restart-checkout"]

    wrong_id = await vigil.api.put(
        f"{base}/other", content=RESTART, headers={"Content-Type": "application/yaml"}
    )
    assert wrong_id.status_code == 422 and "restart-checkout" in wrong_id.json()["message"]
    bad = await vigil.api.put(
        f"{base}/x", json={"steps": [{"action": "notify", "params": {"message": "hi"}, "command": "reboot"}]}
    )
    assert bad.status_code == 422 and "command" in bad.json()["message"]
    assert (
        await vigil.api.put(
            f"{base}/Bad Id", json={"steps": [{"action": "notify", "params": {"message": "hi"}}]}
        )
    ).status_code == 422

    assert (await vigil.api.delete(f"{base}/restart-checkout")).status_code == 204
    assert (await vigil.api.get(f"{base}/restart-checkout")).status_code == 404
    assert (await vigil.api.delete(f"{base}/restart-checkout")).status_code == 404

    audit = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/audit", params={"kind": "config.runbook"})
    ).json()
    assert [(a["subject"], a["detail"]["change"]) for a in audit] == [
        ("restart-checkout", "deleted"),
        ("restart-checkout", "replaced"),
        ("restart-checkout", "created"),
    ]
    older = (
        await vigil.api.get(
            f"/api/v1/projects/{project_id}/audit",
            params={"before_id": audit[1]["id"], "kind": "config.runbook"},
        )
    ).json()
    assert [a["detail"]["change"] for a in older] == ["created"]


async def test_the_runbooks_folder_is_loaded_at_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "vigil")
    async with running(settings) as vigil:
        project_id, _ = await vigil.project_with_key("shop")
    folder = tmp_path / "runbooks" / "shop"
    folder.mkdir(parents=True)
    (folder / "restart-checkout.yaml").write_text(RESTART)
    (folder / "page-someone.yml").write_text("steps: [{action: notify, params: {message: wake up}}]\n")
    async with running(make_settings(tmp_path / "vigil", runbooks_dir=tmp_path / "runbooks")) as vigil:
        listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/runbooks")).json()
        assert [(r["id"], r["origin"]) for r in listed] == [
            ("page-someone", "file"),
            ("restart-checkout", "file"),
        ]
    (folder / "broken.yaml").write_text("steps: [{action: 'rm -rf /'}]\n")
    with pytest.raises(ValidationFailed, match=r"broken\.yaml"):
        async with running(make_settings(tmp_path / "vigil", runbooks_dir=tmp_path / "runbooks")):
            pass


async def test_configuration_changes_through_the_api_are_audited(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    spec = {"filter": {}, "agent": {"endpoint": "builtin:error-summary"}}
    assert (
        await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=spec)
    ).status_code == 200
    assert (
        await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/Bad Name", json=spec)
    ).status_code == 422
    assert (await vigil.api.delete(f"/api/v1/projects/{project_id}/pipelines/errors")).status_code == 204
    entries = (await vigil.api.get(f"/api/v1/projects/{project_id}/audit", params={"kind": "config."})).json()
    assert [(e["kind"], e["subject"], e["detail"]["method"]) for e in entries[:2]] == [
        ("config.pipeline", "errors", "DELETE"),
        ("config.pipeline", "errors", "PUT"),
    ]
    assert {e["kind"] for e in entries} >= {"config.api_key"}  # the key made by project_with_key
