from __future__ import annotations

import pytest
from error_summary.rules import RulesAnalyzer
from sample_records import SEED_BATCH, record

rules = RulesAnalyzer()


async def test_seed_batch_is_a_critical_pool_exhaustion() -> None:
    result = await rules.analyze(SEED_BATCH)

    assert result["error_type"] == "ConnectionPoolExhausted"
    assert result["severity"] == "critical"
    assert result["notify"] is True
    assert result["services"] == ["payment-service"]
    assert result["records"] == 2
    assert result["analyzer"] == "rules"
    assert "2 of 2 records" in result["summary"]
    assert set(result) == {
        "summary",
        "severity",
        "error_type",
        "root_cause",
        "remediation",
        "notify",
        "services",
        "records",
        "analyzer",
    }


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (
            "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
            "ConnectionPoolExhausted",
        ),
        ("FATAL: sorry, too many clients already (SQLSTATE 53300)", "ConnectionPoolExhausted"),
        ("java.lang.OutOfMemoryError: Java heap space", "OutOfMemory"),
        ("Container payment was OOMKilled (exit code 137)", "OutOfMemory"),
        ("write /var/lib/postgresql/data/pg_wal/xlogtemp.42: no space left on device", "DiskFull"),
        (
            "Post https://api.stripe.com/v1/charges: x509: certificate has expired or is not yet valid",
            "TLSError",
        ),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer",
            "TLSError",
        ),
        ('FATAL: password authentication failed for user "payments"', "AuthenticationFailure"),
        ("POST /v1/charges returned status 401", "AuthenticationFailure"),
        ("OpenAI API error: Rate limit reached for gpt-4o-mini, please try again in 20s", "RateLimited"),
        ("inventory-service responded 503 Service Unavailable", "UpstreamServerError"),
        (
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            "UpstreamServerError",
        ),
        ("dial tcp: lookup orders-db on 10.96.0.10:53: no such host", "DNSResolutionFailure"),
        (
            'could not translate host name "db.internal" to address: Name or service not known',
            "DNSResolutionFailure",
        ),
        ("dial tcp 10.0.3.7:6379: connect: connection refused", "ConnectionRefused"),
        ("rpc error: code = DeadlineExceeded desc = context deadline exceeded", "Timeout"),
        ("ReadTimeout: HTTPSConnectionPool(host='api.partner.com', port=443): Read timed out.", "Timeout"),
    ],
)
async def test_classifies_realistic_error_bodies(body: str, error_type: str) -> None:
    result = await rules.analyze([record(body)])

    assert result["error_type"] == error_type


async def test_unmatched_errors_are_reported_as_unknown() -> None:
    batch = [record("Invariant violated: ledger balance mismatch for account 42 (expected 100, got 90)")]

    result = await rules.analyze(batch)

    assert result["error_type"] == "unknown"
    assert result["root_cause"].startswith("unknown")
    assert result["severity"] == "warning"
    assert result["notify"] is False
    assert "ledger balance mismatch" in result["summary"]


async def test_exception_attributes_are_used_when_the_body_is_generic() -> None:
    batch = [
        record("Unhandled exception in worker", attributes={"exception.type": "java.lang.OutOfMemoryError"})
    ]

    result = await rules.analyze(batch)

    assert result["error_type"] == "OutOfMemory"


async def test_the_most_frequent_type_wins_and_others_are_mentioned() -> None:
    batch = [
        record("context deadline exceeded", service="checkout"),
        record("Read timed out after 5000ms", service="checkout"),
        record("dial tcp 10.0.0.9:443: connect: connection refused", service="cart"),
    ]

    result = await rules.analyze(batch)

    assert result["error_type"] == "Timeout"
    assert result["severity"] == "warning"
    assert result["services"] == ["cart", "checkout"]
    assert "ConnectionRefused (1)" in result["summary"]


async def test_a_fatal_record_makes_the_batch_critical() -> None:
    result = await rules.analyze([record("context deadline exceeded", severity=21)])

    assert (result["error_type"], result["severity"], result["notify"]) == ("Timeout", "critical", True)


async def test_info_records_without_a_known_error_are_informational() -> None:
    result = await rules.analyze([record("cache warmed in 120ms", severity=9)])

    assert (result["error_type"], result["severity"]) == ("unknown", "informational")


async def test_structured_bodies_are_searched() -> None:
    result = await rules.analyze([record({"msg": "write failed", "err": "ENOSPC"})])

    assert result["error_type"] == "DiskFull"


async def test_empty_batch() -> None:
    result = await rules.analyze([])

    assert (result["error_type"], result["records"], result["notify"]) == ("unknown", 0, False)
