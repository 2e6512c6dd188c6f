"""Rate limits, throttling and backlogs."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern, status_signals

PATTERNS: tuple[FailurePattern, ...] = (
    FailurePattern(
        error_type="RateLimited",
        title="rate limited",
        phrases=(
            "ProvisionedThroughputExceeded",
            "RequestLimitExceeded",
            "TooManyRequests",
            "throughput for the table was exceeded",
            "Too Many Requests",
            "rate limit",
            "rate-limit",
            "ratelimit",
            "ThrottlingException",
            "Rate exceeded",
            "RESOURCE_EXHAUSTED",
            "code = ResourceExhausted",
            "limiting requests, excess",
        ),
        signals=(
            *status_signals(r"429"),
            r"\bThrottl(?:ed|ing)\b",
            r"\bSlowDown\b",
        ),
        severity="warning",
        root_cause="A dependency or API is rejecting requests over its rate limit: traffic grew, a "
        "retry loop amplifies load, or the limit or quota is too low.",
        remediation=(
            "Identify the limited API and limit (the samples usually name it; check Retry-After and "
            "X-RateLimit headers).",
            "Retry with exponential back-off and jitter honoring Retry-After; cap retries.",
            "Reduce call volume: batch, cache, or deduplicate requests.",
            "Request a higher limit if the traffic is legitimate.",
        ),
        notify=False,
        confidence=0.85,
        # above resource quotas: a quota "exceeded" on requests per minute, or gRPC's
        # RESOURCE_EXHAUSTED, is a rate limit, not a namespace or account quota
        specificity=0.91,
    ),
    FailurePattern(
        error_type="QueueBacklog",
        title="queue backlog / consumer lag",
        phrases=(
            "consumer lag",
            "CommitFailedException",
            "Offset commit failed",
            "max.poll.interval.ms",
            "message backlog",
            "queue backlog",
            "consumer backlog",
        ),
        signals=(
            r"\blag\b.{0,40}(?:exceed|threshold|behind)",
            r"(?:queue|buffer|channel) (?:is )?full",
            r"backlog (?:of|is|grow|exceed)",
            r"dropp(?:ed|ing) \S{0,20} ?(?:messages|events|spans|logs|records)",
        ),
        severity="warning",
        root_cause="Consumers fall behind producers: consumption is slower than the inflow (slow "
        "processing, too few consumers, rebalances), so messages queue up or are dropped.",
        remediation=(
            "Check lag per partition or queue and the consumers' processing time.",
            "Look for rebalances caused by processing longer than max.poll.interval.ms; lower the "
            "batch size or raise the interval.",
            "Scale consumers (up to the partition count) or speed up processing.",
            "Check for a poison message that a consumer retries forever.",
        ),
        notify=False,
        confidence=0.75,
        specificity=0.85,
    ),
)
