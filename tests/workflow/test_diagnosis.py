"""Detected incidents name their failure families, so that runbooks matching `error_types` fit
them: query signals by kind, new error templates through the knowledge base, symptoms not at all."""

from __future__ import annotations

from typing import Any

from vigil.workflow.analysis import analyse
from vigil.workflow.diagnosis import error_types
from vigil.workflow.runbooks import Runbook, RunbookSpec


def runbook(ident: str, **match: object) -> Runbook:
    steps = [{"action": "notify", "params": {"message": ident}}]
    return Runbook(id=ident, spec=RunbookSpec.model_validate({"match": match, "steps": steps}))


def incident(*signals: dict[str, Any]) -> dict[str, Any]:
    return {"id": "inc-1", "kind": "detected", "services": ["orders"], "signals": list(signals)}


def new_error(template: str) -> dict[str, Any]:
    return {
        "kind": "new_error_template",
        "service": "orders",
        "fingerprint": "f-" + str(len(template)),
        "evidence": {"template_id": "t1", "template": template},
    }


def test_query_signals_and_error_templates_name_their_families() -> None:
    found = incident(
        {"kind": "n_plus_one", "service": "orders", "fingerprint": "f1"},
        new_error("<*> - Connection is not available, request timed out after <*>."),
        new_error("java.net.SocketTimeoutException: Read timed out"),  # a symptom: no family
        {"kind": "error_rate_spike", "service": "orders", "fingerprint": "f2"},
    )
    assert error_types(found) == ["ConnectionPoolExhausted", "NPlusOneQueries"]
    assert error_types(incident()) == []


def test_the_workflow_matches_runbooks_by_the_families_it_found() -> None:
    books = [
        runbook("pool", error_types=["ConnectionPoolExhausted"]),
        runbook("n-plus-one", error_types=["NPlusOneQueries"], services=["orders"]),
    ]
    analysis, chosen = analyse(
        incident({"kind": "n_plus_one", "service": "orders", "fingerprint": "f1"}), books
    )
    assert chosen is not None and chosen.id == "n-plus-one"
    assert analysis["error_types"] == ["NPlusOneQueries"] and analysis["runbook_id"] == "n-plus-one"
    assert analysis["known"] is False and analysis["citations"] == []  # nothing was investigated
    analysis, chosen = analyse(
        incident({"kind": "error_rate_spike", "service": "orders", "fingerprint": "f2"}), books
    )
    assert chosen is None and analysis["runbook_id"] is None
