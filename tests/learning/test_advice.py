"""What past cases teach: features, similarity, rewards, the ban on a rejected plan, and the
re-ranking of runbooks and hypotheses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vigil.learning.advice import advise, same_problem_no_new_evidence
from vigil.learning.features import Features, from_incident, tokens
from vigil.learning.reward import feedback_reward, outcome
from vigil.learning.rules import rerank
from vigil.learning.similarity import most_similar
from vigil.learning.store import Case
from vigil.workflow.runbooks import MatchContext, Runbook, RunbookSpec


def alert(**labels: str) -> dict[str, Any]:
    return {
        "id": "inc-1",
        "kind": "alert",
        "title": "Checkout errors",
        "services": [labels["service"]] if "service" in labels else [],
        "labels": labels,
        "alert": {"annotations": {"summary": "5xx at 12% on checkout"}},
    }


def case(
    ident: str,
    features: Features,
    runbook: str | None,
    *,
    outcome: str = "open",
    reward: float = 0.0,
    decision: str | None = None,
    on: str = "workflow",
) -> Case:
    """A case whose reward came from feedback on its plan, its analysis or it whole (`on`)."""
    return Case(
        workflow_id=ident,
        incident_id=f"inc-{ident}",
        created_at=datetime.now(UTC),
        features=features,
        runbook_id=runbook,
        hypothesis="",
        decision=decision,
        outcome=outcome,
        reward=reward,
        plan_reward=reward if on != "analysis" else 0.0,
        analysis_reward=reward if on != "plan" else 0.0,
    )


def runbook(ident: str) -> Runbook:
    return Runbook(
        id=ident,
        spec=RunbookSpec.model_validate(
            {
                "match": {"alert_labels": {"alertname": "CheckoutErrors"}},
                "steps": [{"action": "notify", "params": {"message": "hi"}}],
            }
        ),
    )


def test_an_alert_s_features_leave_out_what_changes_between_firings() -> None:
    features = from_incident(
        alert(alertname="CheckoutErrors", service="checkout", instance="10.0.0.7:8080", tier="supervised")
    )
    assert features.exact == {"service:checkout", "label:alertname=CheckoutErrors", "label:service=checkout"}
    assert "checkout" in features.tokens and "errors" in features.tokens


def test_tokens_drop_numbers_and_ids() -> None:
    assert tokens("Timeout after 30000ms talking to db-7f3a9c1e5b2d4e6f8a0b: pool exhausted") == (
        "timeout",
        "talking",
        "pool",
        "exhausted",
    )


def test_a_detected_incident_s_features_come_from_its_signals() -> None:
    incident = {
        "id": "inc-2",
        "services": ["checkout"],
        "signals": [
            {
                "kind": "new_error_template",
                "service": "checkout",
                "evidence": {"template_id": "t-42", "template": "pool exhausted <*>"},
            },
            {"kind": "error_rate_spike", "service": "checkout", "error_type": "PoolTimeout"},
        ],
    }
    features = from_incident(incident)
    assert features.exact == {
        "service:checkout",
        "signal:new_error_template",
        "signal:error_rate_spike",
        "template:t-42",
        "error:PoolTimeout",
    }
    assert "pool" in features.tokens


def test_exact_features_rank_before_words_and_the_unlike_are_left_out() -> None:
    query = Features(exact=frozenset({"service:checkout", "signal:latency"}), tokens=("slow", "checkout"))
    same = Features(exact=frozenset({"service:checkout", "signal:latency"}), tokens=("other", "words"))
    wordy = Features(exact=frozenset({"service:cart"}), tokens=("slow", "checkout"))
    unlike = Features(exact=frozenset({"service:search"}), tokens=("disk", "full"))
    found = most_similar(query, [("wordy", wordy), ("unlike", unlike), ("same", same)])
    assert [s.item for s in found] == ["same", "wordy"]
    assert found[0].exact == 1.0 and found[1].exact == 0.0 and found[1].text > 0.9


def test_rewards_weigh_a_judgement_as_one_rating() -> None:
    assert (
        feedback_reward(5, None) == 1.0
        and feedback_reward(1, None) == -1.0
        and feedback_reward(3, None) == 0.0
    )
    assert feedback_reward(None, True) == 1.0 and feedback_reward(None, False) == -1.0
    assert feedback_reward(5, False) == 0.0 and feedback_reward(4, True) == 0.75
    assert outcome("escalated", "rejected") == "rejected"
    assert outcome("waiting_approval", None) == "open" and outcome("running", "approved") == "approved"
    assert outcome("resolved", "approved") == "resolved"


def test_a_rejected_plan_is_banned_for_the_same_problem_until_new_evidence() -> None:
    rejected = Features(exact=frozenset({"service:checkout", "label:alertname=CheckoutErrors"}))
    assert same_problem_no_new_evidence(rejected, rejected)
    assert same_problem_no_new_evidence(
        Features(exact=frozenset({"label:alertname=CheckoutErrors"})), rejected
    )
    more = Features(exact=rejected.exact | {"label:cause=deploy"})
    assert not same_problem_no_new_evidence(more, rejected)  # a feature that was not there: new evidence
    wider = Features(exact=frozenset({"service:checkout", "a:1", "b:2", "c:3"}))
    assert not same_problem_no_new_evidence(
        Features(exact=frozenset({"service:checkout"})), wider
    )  # not the same problem

    cases = [case("wf-1", rejected, "restart", outcome="rejected", reward=-4, decision="rejected")]
    assert set(advise(rejected, cases).blocked) == {"restart"}
    assert not advise(more, cases).blocked
    approved_later = [
        *cases,
        case("wf-2", rejected, "restart", outcome="resolved", reward=5, decision="approved"),
    ]
    assert not advise(rejected, approved_later).blocked


def test_feedback_moves_an_equally_matching_runbook_up() -> None:
    incident = alert(alertname="CheckoutErrors", service="checkout")
    features = from_incident(incident)
    books = [runbook("restart"), runbook("scale")]
    context = MatchContext(alert_labels=incident["labels"], services=incident["services"])
    analysis = {
        "summary": "runbook 'restart' matches 1",
        "confidence": 0.65,
        "runbook_id": "restart",
        "candidates": ["restart", "scale"],
    }

    unchanged, chosen = rerank(incident, books, context, analysis, books[0], advise(features, []))
    assert chosen is not None and chosen.id == "restart" and unchanged["confidence"] == 0.65

    cause_rated_down = [case("wf-1", features, "restart", reward=-1.0, on="analysis")]
    revised, chosen = rerank(incident, books, context, analysis, books[0], advise(features, cause_rated_down))
    assert chosen is not None and chosen.id == "restart"  # its plan was not what people judged

    rated_down = [case("wf-1", features, "restart", reward=-1.0, on="plan")]
    revised, chosen = rerank(incident, books, context, analysis, books[0], advise(features, rated_down))
    assert chosen is not None and chosen.id == "scale"
    assert revised["candidates"] == ["scale", "restart"] and revised["learned"]["changed"] is True
    assert revised["learned"]["similar_cases"][0]["workflow_id"] == "wf-1"

    approved = [case("wf-1", features, "restart", outcome="resolved", reward=5.0, decision="approved")]
    revised, chosen = rerank(incident, books, context, analysis, books[0], advise(features, approved))
    assert chosen is not None and chosen.id == "restart" and revised["confidence"] > 0.65

    rejected = [case("wf-1", features, "restart", outcome="rejected", reward=-4.0, decision="rejected")]
    revised, chosen = rerank(incident, books, context, analysis, books[0], advise(features, rejected))
    assert chosen is not None and chosen.id == "scale"
    assert revised["learned"]["not_proposed"] == [
        {"runbook_id": "restart", "rejected_in": "wf-1", "incident_id": "inc-wf-1"}
    ]
    assert "not proposed" in revised["summary"]

    both = [*rejected, case("wf-2", features, "scale", outcome="rejected", reward=-4.0, decision="rejected")]
    revised, chosen = rerank(incident, books, context, analysis, books[0], advise(features, both))
    assert chosen is None and revised["runbook_id"] is None and revised["confidence"] == 0.0


def test_hypotheses_are_re_ranked_by_what_people_rewarded() -> None:
    features = Features(exact=frozenset({"service:checkout"}))
    worked = case("wf-1", features, None, reward=4.0)
    worked.hypothesis = "ConnectionPoolExhausted"
    analysis = {
        "summary": "s",
        "confidence": 0.5,
        "runbook_id": None,
        "candidates": [],
        "hypotheses": [{"error_type": "BadDeploy"}, {"error_type": "ConnectionPoolExhausted"}],
    }
    incident = {"id": "inc-3", "services": ["checkout"]}
    revised, _ = rerank(incident, [], MatchContext(), analysis, None, advise(features, [worked]))
    assert [h["error_type"] for h in revised["hypotheses"]] == ["ConnectionPoolExhausted", "BadDeploy"]
    assert revised["learned"]["hypotheses_reordered"] is True
