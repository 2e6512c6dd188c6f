"""The workflow's rules analysis chooses a runbook from the cause the records show and what people
tied runbooks to: the alert's own runbook wins; a cause's error type matches runbooks naming it;
without a known cause, a runbook that names only services is not proposed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vigil.agents.builtin.models import Evidence, EvidenceItem
from vigil.agents.builtin.rules import RulesEngine
from vigil.workflow.analysis import analyse
from vigil.workflow.runbooks import Runbook, RunbookSpec


def runbook(ident: str, **match: object) -> Runbook:
    steps = [{"action": "notify", "params": {"message": ident}}]
    return Runbook(id=ident, spec=RunbookSpec.model_validate({"match": match, "steps": steps}))


BOOKS = [
    runbook("any-checkout", services=["checkout"]),
    runbook("grow-pool", services=["checkout"], error_types=["ConnectionPoolExhausted"]),
    runbook("on-alert", alert_labels={"alertname": "CheckoutLatency"}),
]


def alert(**labels: str) -> dict[str, Any]:
    return {
        "id": "inc-1",
        "kind": "alert",
        "services": ["checkout"],
        "labels": {"service": "checkout", **labels},
    }


def judged(*templates: str) -> Any:
    now = datetime.now(UTC)
    items = [
        EvidenceItem(
            template_id=f"t{i}",
            template=t,
            service="checkout",
            count=20,
            first_seen=now,
            last_seen=now,
            severity_number=17,
        )
        for i, t in enumerate(templates)
    ]
    return RulesEngine().analyze_sync(Evidence(project_id="p", request_id="r", items=items))


def test_a_known_cause_chooses_the_runbook_of_its_error_type() -> None:
    cause = judged("HikariPool-1 - Connection is not available, request timed out after <*>ms.")
    analysis, chosen = analyse(alert(alertname="CheckoutErrors"), BOOKS, cause)
    assert chosen is not None and chosen.id == "grow-pool"
    assert analysis["known"] is True and analysis["error_type"] == "ConnectionPoolExhausted"
    assert analysis["candidates"] == ["grow-pool", "any-checkout"]
    assert analysis["confidence"] >= analysis["cause_confidence"]
    assert analysis["summary"].startswith("ConnectionPoolExhausted: ")


def test_without_a_known_cause_a_runbook_naming_only_services_is_not_proposed() -> None:
    cause = judged("order <*> could not be completed")
    analysis, chosen = analyse(alert(alertname="CheckoutErrors"), BOOKS, cause)
    assert chosen is None and analysis["known"] is False and analysis["candidates"] == []
    assert analysis["summary"].startswith("Don't know the cause")
    nothing, chosen = analyse(alert(alertname="CheckoutErrors"), BOOKS, None)  # no records found at all
    assert chosen is None and nothing["known"] is False and nothing["citations"] == []
    # a runbook people tied to this alert still matches, and one the alert names wins
    analysis, chosen = analyse(alert(alertname="CheckoutLatency"), BOOKS, cause)
    assert chosen is not None and chosen.id == "on-alert"
    named = {**alert(alertname="CheckoutErrors"), "runbook_id": "any-checkout"}
    analysis, chosen = analyse(named, BOOKS, cause)
    assert chosen is not None and chosen.id == "any-checkout" and analysis["confidence"] == 0.9
