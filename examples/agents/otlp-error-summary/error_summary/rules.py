"""Offline analysis: classify each record by well-known error patterns, then summarize the batch."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from vigil_sdk.records import body_text

from error_summary.summary import Severity, Summary, services_of

FATAL = 21
ERROR = 17
SEVERITY_RANK: dict[Severity, int] = {"informational": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Rule:
    error_type: str
    title: str
    severity: Severity
    pattern: re.Pattern[str]
    root_cause: str
    remediation: str


def _any_of(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), re.IGNORECASE)


# Order matters: a record takes the first rule it matches, so specific causes come before the
# generic symptoms they often mention ("pool exhausted" messages also say "connection refused").
RULES: tuple[Rule, ...] = (
    Rule(
        "ConnectionPoolExhausted",
        "Database connection pool exhausted",
        "critical",
        _any_of(
            r"pool\s+(is\s+)?(exhausted|full)",
            r"exhausted\s+.{0,30}pool",
            r"too many (clients|connections)",
            r"remaining connection slots",
            r"connection is not available",
            r"(unable to acquire|could not get|waiting for)\s+(an?\s+)?(jdbc\s+|db\s+|database\s+)?connection",
        ),
        "More connections are requested than the pool or the database allows: slow queries hold "
        "connections, traffic grew, or connections leak.",
        "Look for slow or blocked queries and connection leaks; raise the pool size or the database's "
        "max_connections only if the load is legitimate; put a pooler such as PgBouncer in front.",
    ),
    Rule(
        "OutOfMemory",
        "Out of memory",
        "critical",
        _any_of(
            r"out of memory",
            r"outofmemoryerror",
            r"\boom(killed)?\b",
            r"\bmemoryerror\b",
            r"cannot allocate memory",
            r"heap space",
            r"memory limit exceeded",
        ),
        "The process needs more memory than its limit: a leak, an unbounded cache or a load spike.",
        "Check memory usage over time for a leak, compare the limit with real usage, and raise the "
        "memory limit or bound the caches and batch sizes.",
    ),
    Rule(
        "DiskFull",
        "Disk full",
        "critical",
        _any_of(
            r"no space left on device",
            r"disk\s+(is\s+)?full",
            r"\benospc\b",
            r"disk quota exceeded",
            r"insufficient disk space",
        ),
        "A volume ran out of space, often through logs, temp files or data growth.",
        "Free space (rotate logs, remove temp files), grow the volume, and alert on disk usage before it "
        "reaches 100%.",
    ),
    Rule(
        "TLSError",
        "TLS handshake or certificate failure",
        "critical",
        _any_of(
            r"certificate\s+(has\s+)?(expired|verify failed|is not valid|signed by unknown)",
            r"certificate_verify_failed",
            r"x509:",
            r"\b(tls|ssl)\b.{0,40}(handshake|alert|error)",
            r"handshake failure",
        ),
        "A certificate expired or is not trusted, or the two sides disagree on TLS versions or ciphers.",
        "Check the peer's certificate chain and expiry (openssl s_client), renew or rotate the "
        "certificate, and make sure the client trusts its CA.",
    ),
    Rule(
        "AuthenticationFailure",
        "Authentication failure",
        "critical",
        _any_of(
            r"authentication failed",
            r"invalid\s+(api key|credentials|token|password)",
            r"unauthori[sz]ed",
            r"access denied",
            r"permission denied",
            r"forbidden",
            r"token (has )?expired",
            r"(status|code|http|returned|got|received)\W{0,3}40[13]\b",
        ),
        "Credentials were rejected: a secret was rotated, expired or is wrong, or permissions changed.",
        "Check the credentials the service uses against the dependency, rotate or re-mount the secret, "
        "and verify the role's permissions.",
    ),
    Rule(
        "RateLimited",
        "Rate limited by a dependency",
        "warning",
        _any_of(
            r"rate.?limit",
            r"too many requests",
            r"throttl",
            r"quota exceeded",
            r"(status|code|http|returned|got|received)\W{0,3}429\b",
        ),
        "Requests exceed a dependency's rate limit or quota.",
        "Add client-side rate limiting with backoff, cache or batch calls, or ask for a higher quota.",
    ),
    Rule(
        "UpstreamServerError",
        "Dependency returned 5xx",
        "warning",
        _any_of(
            r"(status|code|http|returned|responded|got|received)\W{0,3}5\d\d\b",
            r"\b5\d\d\s+(internal|bad|service|gateway)",
            r"bad gateway",
            r"service unavailable",
            r"gateway time-?out",
            r"internal server error",
            r"upstream (connect error|request timeout)",
        ),
        "A downstream service is failing or overloaded and answers with server errors.",
        "Check the health and recent deploys of the dependency; retry with backoff and a circuit "
        "breaker so its failure does not cascade.",
    ),
    Rule(
        "DNSResolutionFailure",
        "DNS resolution failure",
        "warning",
        _any_of(
            r"could not resolve",
            r"could not translate host name",
            r"name or service not known",
            r"nodename nor servname",
            r"no such host",
            r"nxdomain",
            r"temporary failure in name resolution",
            r"getaddrinfo",
            r"unknownhostexception",
        ),
        "A host name does not resolve: a wrong or deleted service name, or DNS is unavailable.",
        "Check the configured host name and that the target service exists; check the cluster DNS "
        "(CoreDNS) pods and their logs.",
    ),
    Rule(
        "ConnectionRefused",
        "Connection refused",
        "warning",
        _any_of(
            r"connection refused",
            r"econnrefused",
            r"(failed|unable) to connect",
            r"could not connect",
        ),
        "Nothing is listening at the dependency's address: it is down, restarting, or the port is wrong.",
        "Check that the dependency is running and ready, and that the service's host and port settings "
        "point at it.",
    ),
    Rule(
        "Timeout",
        "Timeout",
        "warning",
        _any_of(r"timed?\s?out", r"timeout", r"deadline exceeded", r"etimedout"),
        "A call took longer than its deadline: the dependency is slow or overloaded, or the network drops "
        "packets.",
        "Find which dependency is slow (traces, latency metrics); check its load; review the timeout "
        "and retry budget of the caller.",
    ),
)


def classify(record: dict[str, Any]) -> Rule | None:
    text = _searchable_text(record)
    return next((rule for rule in RULES if rule.pattern.search(text)), None)


def _searchable_text(record: dict[str, Any]) -> str:
    # Exception attributes often name the cause when the body is generic ("Unhandled exception").
    attributes = record.get("attributes")
    extra = []
    if isinstance(attributes, dict):
        extra = [str(value) for key, value in attributes.items() if key.startswith(("exception.", "error."))]
    return "\n".join([body_text(record), *extra])


class RulesAnalyzer:
    """Deterministic and offline; the fallback whenever an AI model is absent or fails."""

    async def analyze(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return self.summarize(records).model_dump()

    def summarize(self, records: list[dict[str, Any]]) -> Summary:
        services = services_of(records)
        matches = [(record, classify(record)) for record in records]
        counts = Counter(rule for _, rule in matches if rule is not None)
        if not counts:
            return self._unknown(records, services)

        order = {rule: index for index, rule in enumerate(RULES)}
        # Most frequent first; ties go to the more severe, then the more specific rule.
        ranked = sorted(counts, key=lambda r: (-counts[r], -SEVERITY_RANK[r.severity], order[r]))
        top = ranked[0]
        sample = next(record for record, rule in matches if rule is top)
        severity = _escalate(top.severity, records)
        others = ", ".join(f"{rule.error_type} ({counts[rule]})" for rule in ranked[1:])
        summary = (
            f"{top.title} in {', '.join(services)}: {counts[top]} of {len(records)} records"
            + (f"; also {others}" if others else "")
            + f'. Example: "{_clip(body_text(sample))}"'
        )
        return Summary(
            summary=summary,
            severity=severity,
            error_type=top.error_type,
            root_cause=top.root_cause,
            remediation=top.remediation,
            notify=severity == "critical",
            services=services,
            records=len(records),
            analyzer="rules",
        )

    def _unknown(self, records: list[dict[str, Any]], services: list[str]) -> Summary:
        if not records:
            summary = "Empty batch: no records to analyze"
        else:
            summary = (
                f"{len(records)} records from {', '.join(services)} match no known error pattern. "
                f'Example: "{_clip(body_text(records[0]))}"'
            )
        severity = _escalate("informational", records)
        return Summary(
            summary=summary,
            severity=severity,
            error_type="unknown",
            root_cause="unknown: the messages match none of the known error patterns",
            remediation="Read the example records and their traces; if this error recurs, add a rule for it.",
            notify=severity == "critical",
            services=services,
            records=len(records),
            analyzer="rules",
        )


def _escalate(severity: Severity, records: list[dict[str, Any]]) -> Severity:
    """A FATAL record makes the batch critical; an ERROR record makes it at least a warning."""
    highest = max((_severity_number(r) for r in records), default=0)
    floor: Severity = "critical" if highest >= FATAL else "warning" if highest >= ERROR else "informational"
    return max(severity, floor, key=SEVERITY_RANK.__getitem__)


def _severity_number(record: dict[str, Any]) -> int:
    number = record.get("severityNumber")
    return number if isinstance(number, int) else 0


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
