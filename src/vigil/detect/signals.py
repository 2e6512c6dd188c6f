"""Signals raised when a window closes: what is wrong, where, how badly, and the evidence.

`detect(stats, baseline)` checks one endpoint's window against static thresholds (common
request-level defaults) and, per metric once its baseline is ready, against thresholds relative to the baseline:

* error_rate_spike: at least `min_errors` errors and a rate >= the static rate; once the baseline is
  ready also >= baseline + k * its window-to-window spread, and an error count that the baseline
  rate makes unlikely (binomial tail <= `error_p_value`), which is what keeps small windows quiet.
* latency_regression (baseline only): p95 >= max(factor * baseline p95, baseline noise band, floor),
  or a lesser rise (`detector_min_factor`) that the streaming detector scores as anomalous.
* slow_endpoint: p95 >= the static threshold; once the baseline is ready, also >= relative factor *
  baseline p95, so an endpoint that is slow by nature does not fire every window.
* slow_query, high_frequency_query, n_plus_one: per statement under the endpoint, the slowest
  execution, the executions in the window and the most executions within one trace, against the
  static threshold and, once ready, a factor times the endpoint's baseline of the same quantity.

`evaluate(window, store)` runs `detect` over a closed window, teaches the baselines afterwards (damping
metrics that fired) and merges signals with the same fingerprint. The fingerprint is a hash of kind,
project, service and subject: the endpoint for request signals, the statement for slow and frequent
queries (the same query is one problem whichever endpoint runs it) and both for N+1.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vigil.detect.baselines import BaselineSnapshot, BaselineStore
from vigil.detect.facts import RequestFact
from vigil.detect.stats import NO_ENDPOINT, OTHER, ClosedWindow, QueryStats, WindowStats

__all__ = [
    "Evidence",
    "Severity",
    "Signal",
    "SignalConfig",
    "SignalKind",
    "detect",
    "evaluate",
    "fingerprint",
]


class SignalKind(StrEnum):
    ERROR_RATE_SPIKE = "error_rate_spike"
    LATENCY_REGRESSION = "latency_regression"
    SLOW_ENDPOINT = "slow_endpoint"
    SLOW_QUERY = "slow_query"
    N_PLUS_ONE = "n_plus_one"
    HIGH_FREQUENCY_QUERY = "high_frequency_query"
    NEW_ERROR_TEMPLATE = "new_error_template"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

# the least severity of each kind; a value far past its threshold escalates it
_BASE_SEVERITY = {
    SignalKind.ERROR_RATE_SPIKE: Severity.WARNING,
    SignalKind.LATENCY_REGRESSION: Severity.WARNING,
    SignalKind.SLOW_ENDPOINT: Severity.INFO,
    SignalKind.SLOW_QUERY: Severity.INFO,
    SignalKind.N_PLUS_ONE: Severity.WARNING,
    SignalKind.HIGH_FREQUENCY_QUERY: Severity.INFO,
    SignalKind.NEW_ERROR_TEMPLATE: Severity.WARNING,
}

# the baseline metric each kind is about: a window that raised it teaches that metric less
METRIC_OF_KIND = {
    SignalKind.ERROR_RATE_SPIKE: "error_rate",
    SignalKind.LATENCY_REGRESSION: "p95_ms",
    SignalKind.SLOW_ENDPOINT: "p95_ms",
    SignalKind.SLOW_QUERY: "query_max_ms",
    SignalKind.N_PLUS_ONE: "max_per_trace",
    SignalKind.HIGH_FREQUENCY_QUERY: "query_max_count",
}


class SignalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # static thresholds (common request-level defaults)
    slow_endpoint_p95_ms: float = 1000.0
    error_rate: float = 0.05
    n_plus_one_per_trace: int = 20
    slow_query_ms: float = 300.0
    high_frequency_query: int = 100
    # evidence needed at all
    min_requests: int = Field(5, ge=1)  # for latency signals
    min_errors: int = Field(5, ge=1)
    # relative to a ready baseline
    error_k: float = 3.0  # times the window-to-window spread of the rate
    error_p_value: float = 1e-4  # chance of that many errors at the baseline rate, at most
    error_rate_floor: float = 0.002  # least baseline rate assumed for that chance
    latency_factor: float = 2.0
    latency_floor_ms: float = 200.0
    noise_k: float = 3.0
    detector_score: float = 0.5
    detector_min_factor: float = 1.5
    relative_slow_factor: float = 1.5
    query_latency_factor: float = 2.0
    count_factor: float = 3.0
    n_plus_one_factor: float = 2.0
    # severity: value / threshold at which a signal is at least warning, and critical
    warning_ratio: float = 1.5
    critical_ratio: float = 3.0
    max_trace_ids: int = Field(5, ge=0)
    max_samples: int = Field(3, ge=0)


class Evidence(BaseModel):
    stats: WindowStats | None = None
    baseline: BaselineSnapshot | None = None
    query: QueryStats | None = None
    trace_ids: list[str] = []
    samples: list[RequestFact] = []
    records: list[dict[str, Any]] = []
    template_id: str | None = None
    template: str | None = None
    detector_score: float | None = None


class Signal(BaseModel):
    kind: SignalKind
    severity: Severity
    project: str
    service: str
    endpoint: str | None = None
    statement: str | None = None
    window_start: float
    window_end: float
    fingerprint: str
    title: str
    value: float
    threshold: float
    evidence: Evidence = Evidence()

    @property
    def trace_ids(self) -> list[str]:
        return self.evidence.trace_ids


def fingerprint(kind: SignalKind, project: str, service: str, subject: str) -> str:
    """A stable 16-hex-digit id of a problem, the same across windows and restarts."""
    text = "\x1f".join((kind.value, project, service, subject))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def least_surprising_errors(n: int, p: float, p_value: float) -> int:
    """The least error count x with P(X >= x) <= p_value for X ~ Binomial(n, p)."""
    if n <= 0:
        return 1
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    mean = n * p
    if mean >= 30:  # normal approximation; below, the exact sum (no underflow while n * p is small)
        z = math.sqrt(2.0) * _inverse_erfc(2.0 * p_value)
        return min(n + 1, math.ceil(mean + z * math.sqrt(mean * (1.0 - p)) + 0.5))
    pmf = (1.0 - p) ** n
    tail = 1.0
    for x in range(n + 1):
        if tail <= p_value:
            return x
        tail -= pmf
        pmf *= (n - x) / (x + 1) * p / (1.0 - p)
    return n + 1


@lru_cache(maxsize=16)
def _inverse_erfc(y: float) -> float:
    lo, hi = 0.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if math.erfc(mid) > y:
            lo = mid
        else:
            hi = mid
    return lo


def _severity(kind: SignalKind, value: float, threshold: float, c: SignalConfig) -> Severity:
    ratio = value / threshold if threshold > 0 else math.inf
    if ratio >= c.critical_ratio:
        return Severity.CRITICAL
    if ratio >= c.warning_ratio:
        return max(Severity.WARNING, _BASE_SEVERITY[kind], key=lambda s: s.rank)
    return _BASE_SEVERITY[kind]


class _Builder:
    """Makes the signals of one endpoint window, sharing its context."""

    def __init__(self, stats: WindowStats, baseline: BaselineSnapshot | None, c: SignalConfig) -> None:
        self.stats, self.baseline, self.c = stats, baseline, c
        self.out: list[Signal] = []

    def ready(self, metric: str) -> float | None:
        found = self.baseline.ready(metric) if self.baseline is not None else None
        return None if found is None else found.value

    def add(
        self,
        kind: SignalKind,
        value: float,
        threshold: float,
        title: str,
        traces: list[str],
        samples: Sequence[RequestFact] = (),
        query: QueryStats | None = None,
    ) -> None:
        s, c = self.stats, self.c
        endpoint = None if s.endpoint == NO_ENDPOINT and query is not None else s.endpoint
        if kind in (SignalKind.SLOW_QUERY, SignalKind.HIGH_FREQUENCY_QUERY):
            subject = query.statement if query else ""
        elif kind is SignalKind.N_PLUS_ONE:
            subject = f"{s.endpoint}\n{query.statement if query else ''}"
        else:
            subject = s.endpoint
        self.out.append(
            Signal(
                kind=kind,
                severity=_severity(kind, value, threshold, c),
                project=s.project,
                service=s.service,
                endpoint=endpoint,
                statement=None if query is None else query.statement,
                window_start=s.window_start,
                window_end=s.window_end,
                fingerprint=fingerprint(kind, s.project, s.service, subject),
                title=title,
                value=value,
                threshold=threshold,
                evidence=Evidence(
                    # the samples are kept once, below: a request with its body is not small
                    stats=s.model_copy(update={"error_samples": [], "slow_samples": []}),
                    baseline=self.baseline,
                    query=query,
                    trace_ids=list(dict.fromkeys(t for t in traces if t))[: c.max_trace_ids],
                    samples=list(samples[: c.max_samples]),
                    detector_score=None if self.baseline is None else self.baseline.detector_score,
                ),
            )
        )

    def requests(self) -> None:
        s, c = self.stats, self.c
        where = f"{s.endpoint} ({s.service})"
        if s.errors >= c.min_errors:
            threshold = c.error_rate
            base = self.ready("error_rate")
            if base is not None and self.baseline is not None:
                spread = self.baseline.metrics["error_rate"].spread
                least = least_surprising_errors(s.count, max(base, c.error_rate_floor), c.error_p_value)
                threshold = max(threshold, base + c.error_k * spread, least / s.count)
            if s.error_rate >= threshold:
                title = f"Error rate {s.error_rate:.0%} on {where}: {s.errors} of {s.count} requests failed"
                traces = [f.trace_id or "" for f in s.error_samples]
                self.add(SignalKind.ERROR_RATE_SPIKE, s.error_rate, threshold, title, traces, s.error_samples)
        p95 = s.p95_ms
        if p95 is None or s.count < c.min_requests:
            return
        slow_threshold = c.slow_endpoint_p95_ms
        base = self.ready("p95_ms")
        traces = [f.trace_id or "" for f in s.slow_samples]
        if base is not None and self.baseline is not None:
            band = self.baseline.metrics["p95_ms"].upper(c.noise_k)
            threshold = max(c.latency_factor * base, band, c.latency_floor_ms)
            score = self.baseline.detector_score
            why = ""
            if p95 < threshold and score is not None and score >= c.detector_score:
                threshold = max(c.detector_min_factor * base, c.latency_floor_ms)
                why = f" (anomaly score {score:.2f})"
            if p95 >= threshold:
                title = f"Latency regression on {where}: p95 {p95:.0f} ms, baseline {base:.0f} ms{why}"
                self.add(SignalKind.LATENCY_REGRESSION, p95, threshold, title, traces, s.slow_samples)
            slow_threshold = max(slow_threshold, c.relative_slow_factor * base)
        if p95 >= slow_threshold:
            title = f"Slow endpoint {where}: p95 {p95:.0f} ms over {s.count} requests"
            self.add(SignalKind.SLOW_ENDPOINT, p95, slow_threshold, title, traces, s.slow_samples)

    def queries(self) -> None:
        s, c = self.stats, self.c
        slow = max(c.slow_query_ms, c.query_latency_factor * (self.ready("query_max_ms") or 0.0))
        frequent = max(c.high_frequency_query, c.count_factor * (self.ready("query_max_count") or 0.0))
        repeated = max(c.n_plus_one_per_trace, c.n_plus_one_factor * (self.ready("max_per_trace") or 0.0))
        for q in s.queries:
            if q.statement == OTHER:
                continue
            short = q.statement if len(q.statement) <= 80 else q.statement[:77] + "..."
            if q.max_ms is not None and q.max_ms >= slow:
                title = f"Slow query in {s.service}: {q.max_ms:.0f} ms: {short}"
                self.add(SignalKind.SLOW_QUERY, q.max_ms, slow, title, q.slow_trace_ids, query=q)
            if q.count >= frequent:
                span = s.window_end - s.window_start
                title = f"High-frequency query in {s.service}: {q.count} runs in {span:.0f} s: {short}"
                traces = [q.max_per_trace_trace_id or "", *q.slow_trace_ids]
                self.add(SignalKind.HIGH_FREQUENCY_QUERY, q.count, frequent, title, traces, query=q)
            if q.traces and q.max_per_trace >= repeated:
                title = f"N+1 on {s.endpoint} ({s.service}): {q.max_per_trace} runs in one request: {short}"
                traces = [q.max_per_trace_trace_id or ""]
                self.add(SignalKind.N_PLUS_ONE, q.max_per_trace, repeated, title, traces, query=q)


def detect(
    stats: WindowStats, baseline: BaselineSnapshot | None = None, config: SignalConfig | None = None
) -> list[Signal]:
    """The signals of one endpoint window, given its baseline from before this window (or none)."""
    builder = _Builder(stats, baseline, config or SignalConfig())
    if stats.count:
        builder.requests()
    builder.queries()
    return builder.out


def evaluate(
    window: ClosedWindow, store: BaselineStore | None = None, config: SignalConfig | None = None
) -> list[Signal]:
    """Detect over a closed window, then teach its endpoints to the baselines; one signal per fingerprint."""
    found: dict[str, Signal] = {}
    for stats in window.endpoints:
        baseline = store.assess(stats) if store is not None else None
        signals = detect(stats, baseline, config)
        if store is not None:
            store.learn(stats, {METRIC_OF_KIND[s.kind] for s in signals if s.kind in METRIC_OF_KIND})
        for signal in signals:
            kept = found.get(signal.fingerprint)
            if kept is None or signal.value > kept.value:
                found[signal.fingerprint] = signal
    return list(found.values())
