"""`vigil feedback give|list|stats` against a real runtime, on a workflow waiting for approval."""

from __future__ import annotations

from tests.cli.test_admin import cli, cli_json
from tests.conftest import VigilHandle
from tests.doubles.kubernetes_server import KubernetesServer
from tests.e2e.test_workflow import k8s
from tests.e2e.test_workflow_learning import project, proposed

__all__ = ["k8s"]


async def test_feedback_from_the_command_line(vigil: VigilHandle, k8s: KubernetesServer) -> None:
    project_id, key = await project(vigil, k8s, "payments")
    waiting = await proposed(vigil, project_id, key, "a")

    shown = await cli(vigil, "workflows", "show", "payments", waiting["id"])
    assert (
        shown.exit_code == 0
        and f"feedback: vigil feedback give payments {waiting['analysis_id']} | {waiting['plan_id']}"
        in shown.output
    )

    given = await cli(
        vigil,
        "feedback",
        "give",
        "payments",
        waiting["plan_id"],
        "--rating",
        "2",
        "--not-helpful",
        "--comment",
        "scale instead",
    )
    assert given.exit_code == 0, given.output
    assert "2/5, not helpful on plan" in given.output
    stored = await cli_json(vigil, "feedback", "give", "payments", waiting["incident_id"], "--helpful")
    assert (
        stored["target_kind"] == "workflow"
        and stored["workflow_id"] == waiting["id"]
        and stored["rating"] is None
    )

    nothing = await cli(vigil, "feedback", "give", "payments", waiting["id"])
    assert nothing.exit_code != 0 and "--rating" in nothing.output
    unknown = await cli(vigil, "feedback", "give", "payments", "wf-nothing-0", "--rating", "3")
    assert (
        unknown.exit_code != 0 and "no workflow, incident, analysis or plan 'wf-nothing-0'" in unknown.output
    )

    listed = await cli_json(vigil, "feedback", "list", "payments")
    assert [(f["target_kind"], f["helpful"]) for f in listed] == [("workflow", True), ("plan", False)]
    shown = await cli(vigil, "feedback", "list", "payments", "--target", waiting["plan_id"])
    assert shown.exit_code == 0 and "scale instead" in shown.output and "helpful" in shown.output

    stats = await cli_json(vigil, "feedback", "stats", "payments")
    assert stats["count"] == 2 and stats["mean_rating"] == 2 and stats["helpful_ratio"] == 0.5
    table = await cli(vigil, "feedback", "stats", "payments")
    assert table.exit_code == 0 and "MEAN RATING" in table.output and "rejections 0" in table.output
