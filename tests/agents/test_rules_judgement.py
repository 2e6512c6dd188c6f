"""How sure the rules engine may be: mentions and symptoms never decide, a cause explains its
consequences, rivals of comparable weight give a reasoned "don't know", an N+1 is recognized by
its shape, confidence grows with the evidence, and only a configured runbook that names the cause
is recommended."""

from __future__ import annotations

from tests.agents.test_rules_engine import analyze, item
from vigil.agents.builtin.recommend import recommend
from vigil.workflow.runbooks import Runbook, RunbookSpec

TRACES = [
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "00f067aa0ba902b7a3ce929d0e0e4736",
    "a3ce929d0e0e47364bf92f3577b34da6",
]
LOOKUP = 'SELECT "authors".* FROM "authors" WHERE "authors"."id" = $1 LIMIT $2'


def test_patterns_mentioned_only_at_info_or_debug_decide_nothing() -> None:
    result = analyze(
        item("Rate limit for tenant acme set to 100 requests per second", count=40, severity_number=9)
    )
    assert (result.error_type, result.known) == ("Unknown", False)
    assert "below WARN" in result.root_cause
    # the same words logged as an error are a finding
    assert analyze(item("Rate limit exceeded for tenant acme", count=40)).error_type == "RateLimited"
    # families whose evidence is logged at INFO by nature still decide
    slow = analyze(
        item("LOG:  duration: 5123.4 ms  statement: SELECT * FROM orders", count=12, severity_number=9)
    )
    assert (slow.error_type, slow.known) == ("SlowQuery", True)


def test_a_cause_is_not_the_rival_of_what_it_explains() -> None:
    killed = item("Container worker was OOMKilled", "kubelet", count=4)
    looping = item("Back-off restarting failed container worker", "kubelet", count=12)
    result = analyze(killed, looping)
    assert (result.error_type, result.known) == ("OutOfMemoryKilled", True)
    assert "also container crash loop" in result.summary


def test_an_n_plus_one_is_one_lookup_many_times_per_trace() -> None:
    repeated = item(LOOKUP, count=120, severity_number=5, trace_ids=TRACES)
    result = analyze(repeated)
    assert (result.error_type, result.known) == ("NPlusOneQueries", True)
    assert "40 times per trace" in result.evidence[0].reason
    # as many records over traces too many to count per trace, or too few per trace: not an N+1
    spread = [*TRACES, "b" * 32, "c" * 32]
    assert (
        analyze(item(LOOKUP, count=120, severity_number=5, trace_ids=spread)).error_type != "NPlusOneQueries"
    )
    assert (
        analyze(item(LOOKUP, count=12, severity_number=5, trace_ids=TRACES)).error_type != "NPlusOneQueries"
    )
    assert analyze(item(LOOKUP, count=120, severity_number=5)).error_type != "NPlusOneQueries"


def test_confidence_grows_with_the_evidence() -> None:
    message = "java.net.UnknownHostException: payments.internal: Name or service not known"
    one = analyze(item(message, count=1, severity_number=13))
    many = analyze(item(message, count=40))
    corroborated = analyze(
        item(message, count=40), item("Error: getaddrinfo ENOTFOUND payments.internal", "web", count=25)
    )
    assert one.known and many.known and corroborated.known
    assert one.confidence < many.confidence < corroborated.confidence <= 0.99
    # a rival cause, even a much weaker one, takes some of the certainty away
    rival = analyze(
        item(message, count=40), item('FATAL: password authentication failed for user "x"', "db", count=5)
    )
    assert rival.error_type == "DnsResolutionFailure" and rival.confidence < many.confidence


def test_only_a_configured_runbook_that_names_the_cause_is_recommended() -> None:
    def runbook(ident: str, **match: list[str]) -> Runbook:
        steps = [{"action": "notify", "params": {"message": ident}}]
        return Runbook(id=ident, spec=RunbookSpec.model_validate({"match": match, "steps": steps}))

    analysis = analyze(
        item("HikariPool-1 - Connection is not available, request timed out after 30000ms.", count=30)
    )
    catch_all = runbook("catch-all")
    other = runbook("disk", error_types=["DiskFull"])
    pool = runbook("pool", error_types=["ConnectionPoolExhausted"])
    pool_here = runbook("pool-here", error_types=["ConnectionPoolExhausted"], services=["payment-service"])
    pool_elsewhere = runbook("pool-elsewhere", error_types=["ConnectionPoolExhausted"], services=["search"])
    assert recommend(analysis, [catch_all, other]).runbook_id is None
    assert recommend(analysis, [catch_all, other, pool]).runbook_id == "pool"
    assert (
        recommend(analysis, [pool, pool_here, pool_elsewhere]).runbook_id == "pool-here"
    )  # the most specific
    unknown = analyze(item("Request failed", count=30))
    assert recommend(unknown, [catch_all, pool]).runbook_id is None
