"""`vigil runbooks`, `vigil audit` and `vigil policy` against a real runtime: YAML files in, YAML
out, errors that name the file and the field, and every change in the audit log."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.test_admin import cli, cli_json
from tests.conftest import VigilHandle

RESTART = """\
id: restart-checkout
title: Restart checkout
match:
  alert_labels: {alertname: CheckoutErrors, service: {regex: "check.*"}}
  services: [checkout]
tier: supervised
steps:
  - action: kubernetes.rollout_restart
    params: {namespace: shop, deployment: checkout}
verify: {after_s: 30}
"""
PAGE = """\
title: Tell the on-call
steps:
  - action: notify
    params: {message: "disk almost full", severity: warning}
"""
NO_MESSAGE = """\
id: broken
steps:
  - action: notify
    params: {severity: warning}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


async def test_apply_list_show_delete_and_the_audit_log(vigil: VigilHandle, tmp_path: Path) -> None:
    await vigil.project_with_key("shop")
    restart = write(tmp_path, "checkout.yaml", RESTART)
    page = write(tmp_path, "page-oncall.yml", PAGE)

    empty = await cli(vigil, "runbooks", "list", "shop")
    assert empty.exit_code == 0 and "No runbooks yet" in empty.stdout

    applied = await cli(vigil, "runbooks", "apply", "shop", str(restart), str(page))
    assert applied.exit_code == 0, applied.output
    assert f"created runbook restart-checkout from {restart}" in applied.stdout  # the id: wins
    assert f"created runbook page-oncall from {page}" in applied.stdout  # else the file name

    listed = await cli(vigil, "runbooks", "list", "shop")
    assert listed.exit_code == 0, listed.output
    assert "restart-checkout" in listed.stdout and "page-oncall" in listed.stdout
    assert "alertname=CheckoutErrors; service=~check.*; services checkout" in listed.stdout
    assert "kubernetes.rollout_restart" in listed.stdout and "notify" in listed.stdout
    rows = await cli_json(vigil, "runbooks", "list", "shop")
    assert sorted(row["id"] for row in rows) == ["page-oncall", "restart-checkout"]

    shown = await cli(vigil, "runbooks", "show", "shop", "restart-checkout")
    assert shown.exit_code == 0, shown.output
    document = yaml.safe_load(shown.stdout)
    assert document["id"] == "restart-checkout" and document["tier"] == "supervised"
    assert document["steps"][0]["params"] == {"namespace": "shop", "deployment": "checkout"}
    assert document["verify"]["after_s"] == 30
    as_json = await cli_json(vigil, "runbooks", "show", "shop", "restart-checkout")
    assert as_json["spec"]["match"]["error_types"] == [] and as_json["spec"]["verify"]["promql"] is None
    assert "error_types" not in shown.stdout and "null" not in shown.stdout  # empty defaults left out
    assert as_json["spec"]["verify"]["after_s"] == 30

    # what `show` prints is taken back by `apply`, unchanged
    again = await cli(vigil, "runbooks", "apply", "shop", str(write(tmp_path, "any-name.yaml", shown.stdout)))
    assert again.exit_code == 0 and "replaced runbook restart-checkout" in again.stdout, again.output
    assert (await cli_json(vigil, "runbooks", "show", "shop", "restart-checkout"))["spec"] == as_json["spec"]

    deleted = await cli(vigil, "runbooks", "delete", "shop", "page-oncall")
    assert deleted.exit_code == 0 and "deleted runbook page-oncall" in deleted.stdout
    gone = await cli(vigil, "runbooks", "show", "shop", "page-oncall")
    assert gone.exit_code == 1 and "no runbook 'page-oncall'" in gone.stderr
    missing = await cli(vigil, "runbooks", "delete", "shop", "page-oncall")
    assert missing.exit_code == 1 and "not_found, HTTP 404" in missing.stderr

    entries = await cli_json(vigil, "audit", "shop", "--kind", "config.runbook")
    changes = [(e["subject"], e["detail"]["change"], e["actor"]) for e in entries]
    assert changes == [
        ("page-oncall", "deleted", "admin"),
        ("restart-checkout", "replaced", "admin"),
        ("page-oncall", "created", "admin"),
        ("restart-checkout", "created", "admin"),
    ]
    one = await cli_json(vigil, "audit", "shop", "--subject", "page-oncall", "--limit", "1")
    assert [(e["subject"], e["detail"]["change"]) for e in one] == [("page-oncall", "deleted")]
    assert await cli_json(vigil, "audit", "shop", "--actor", "somebody-else") == []
    log = await cli(vigil, "audit", "shop", "--limit", "2")
    assert log.exit_code == 0, log.output
    assert "config.runbook" in log.stdout and '"change": "deleted"' in log.stdout
    assert f"older: --before-id {entries[1]['id']}" in log.stdout
    older = await cli_json(
        vigil, "audit", "shop", "--kind", "config.runbook", "--before-id", str(entries[1]["id"])
    )
    assert [e["id"] for e in older] == [e["id"] for e in entries[2:]]


async def test_apply_names_the_file_and_the_field_and_applies_the_rest(
    vigil: VigilHandle, tmp_path: Path
) -> None:
    await vigil.project_with_key("shop")
    broken = write(tmp_path, "broken.yaml", NO_MESSAGE)
    bad_yaml = write(tmp_path, "bad.yaml", "steps: [unclosed\n")
    bad_name = write(tmp_path, "Page On-Call.yaml", PAGE)
    other_id = write(tmp_path, "extra.yaml", "id: UPPER\n" + PAGE)
    good = write(tmp_path, "page-oncall.yaml", PAGE)

    result = await cli(
        vigil,
        "runbooks",
        "apply",
        "shop",
        str(broken),
        str(bad_yaml),
        str(bad_name),
        str(other_id),
        str(good),
    )
    assert result.exit_code == 1
    assert f"{broken}: steps.0.params.message: Field required (validation_error, HTTP 422)" in result.stderr
    assert f"{bad_yaml}: not valid YAML" in result.stderr
    assert (
        f"{bad_name}: the file name (no id: in the document) gives runbook id 'Page On-Call'" in result.stderr
    )
    assert f"{other_id}: its id gives runbook id 'UPPER'" in result.stderr
    assert "4 of 5 runbook files were not applied" in result.stderr
    assert f"created runbook page-oncall from {good}" in result.stdout
    assert [row["id"] for row in await cli_json(vigil, "runbooks", "list", "shop")] == ["page-oncall"]

    unknown_field = write(tmp_path, "page-oncall.yaml", PAGE + "retries: 3\n")
    rejected = await cli(vigil, "runbooks", "apply", "shop", str(unknown_field))
    assert rejected.exit_code == 1
    assert f"{unknown_field}: retries: Extra inputs are not permitted" in rejected.stderr

    absent = await cli(vigil, "runbooks", "apply", "shop", str(tmp_path / "absent.yaml"))
    assert absent.exit_code == 1 and "absent.yaml: cannot read it: No such file or directory" in absent.stderr


async def test_policy_set_and_show(vigil: VigilHandle, tmp_path: Path) -> None:
    await vigil.project_with_key("shop")
    default = await cli(vigil, "policy", "show", "shop")
    assert default.exit_code == 0, default.output
    assert yaml.safe_load(default.stdout)["approval_expiry_s"] == 1800

    policy = write(
        tmp_path,
        "policy.yaml",
        "approval_expiry_s: 600\ndetected: {enabled: true, min_severity: warning}\n"
        "actions:\n  kubernetes:\n    enabled: true\n    namespaces: [shop]\n"
        "    connection: {host: 'https://k8s.example.test', token: s3cret}\n",
    )
    saved = await cli(vigil, "policy", "set", "shop", str(policy))
    assert saved.exit_code == 0 and "saved the workflow policy of shop" in saved.stdout, saved.output
    shown = await cli(vigil, "policy", "show", "shop")
    stored = yaml.safe_load(shown.stdout)
    assert stored["approval_expiry_s"] == 600 and stored["detected"]["enabled"] is True
    assert stored["actions"]["kubernetes"]["connection"]["token"] == "**********"
    assert (await cli_json(vigil, "policy", "show", "shop")) == stored

    # fed back as shown, the masked token would replace the real one: refused before it is sent
    masked = write(tmp_path, "shown.yaml", shown.stdout)
    refused = await cli(vigil, "policy", "set", "shop", str(masked))
    assert refused.exit_code == 1
    assert f"{masked}: actions.kubernetes.connection.token is masked" in refused.stderr

    invalid = write(tmp_path, "invalid.json", '{"approval_expiry_s": -1}')
    bad = await cli(vigil, "policy", "set", "shop", str(invalid))
    assert bad.exit_code == 1
    assert "approval_expiry_s: Input should be greater than 0 (validation_error, HTTP 422)" in bad.stderr
    not_a_mapping = await cli(vigil, "policy", "set", "shop", str(write(tmp_path, "list.yaml", "- 1\n")))
    assert not_a_mapping.exit_code == 1 and "a workflow policy is a mapping" in not_a_mapping.stderr

    entries = await cli_json(vigil, "audit", "shop", "--kind", "config.workflow_policy")
    assert len(entries) == 1 and entries[0]["detail"] == {"change": "replaced"}
