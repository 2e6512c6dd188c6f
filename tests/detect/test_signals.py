from __future__ import annotations

from typing import Any

from tests.detect.traffic import T0, Pipeline, Shape
from vigil.detect.baselines import BaselineConfig
from vigil.detect.signals import Severity, SignalConfig, SignalKind, detect, fingerprint
from vigil.detect.stats import QueryStats, WindowStats

LOOP = "SELECT * FROM items WHERE order_id = ?"
ORDER = "SELECT * FROM orders WHERE id = ?"


def quiet(**overrides: Any) -> Shape:
    """Steady traffic under every static threshold: 60 requests a minute, a few queries each."""
    values: dict[str, Any] = {"requests": 60, "queries": [(ORDER, 5.0, 1), (LOOP, 4.0, 1)], **overrides}
    return Shape(**values)


def steady_then(
    change: Shape, *, base: Shape | None = None, before: int = 40, after: int = 3, seed: int = 7, **kw: Any
) -> Pipeline:
    pipeline = Pipeline(seed=seed, **kw)
    pipeline.windows(before, [base or quiet()])
    pipeline.windows(after, [change])
    pipeline.finish()
    return pipeline


def raised(pipeline: Pipeline, kind: SignalKind, start: int = 0) -> list[int]:
    return [
        i for i, batch in enumerate(pipeline.run.signals[start:], start) if any(s.kind is kind for s in batch)
    ]


def test_steady_noisy_traffic_raises_nothing() -> None:
    for seed in (1, 2, 3):
        pipeline = Pipeline(seed=seed)
        pipeline.windows(
            60, [quiet(sigma=0.4, error_rate=0.01), quiet(route="/cart", median_ms=30, requests=40)]
        )
        run = pipeline.finish()
        assert len(run.windows) == 60
        assert run.all_signals() == [], [s.title for s in run.all_signals()]
        assert run.events == []


def test_error_rate_spike() -> None:
    pipeline = steady_then(quiet(error_rate=0.2))
    assert raised(pipeline, SignalKind.ERROR_RATE_SPIKE) == [40, 41, 42]
    signal = next(s for s in pipeline.run.signals[40] if s.kind is SignalKind.ERROR_RATE_SPIKE)
    stats = signal.evidence.stats
    assert stats is not None and signal.value == stats.error_rate > signal.threshold >= 0.05
    assert signal.endpoint == "GET /orders/{id}" and signal.service == "shop"
    assert signal.fingerprint == fingerprint(SignalKind.ERROR_RATE_SPIKE, "p1", "shop", "GET /orders/{id}")
    assert len({s.fingerprint for i in (40, 41, 42) for s in pipeline.run.signals[i]}) == 1
    assert 0 < len(signal.trace_ids) <= 5 and all(f.is_error for f in signal.evidence.samples)
    assert signal.evidence.baseline is not None and signal.evidence.baseline.ready("error_rate")


def test_error_rate_threshold_follows_a_noisy_baseline() -> None:
    # an endpoint that always fails 15% of the time is flagged by the static threshold only until it has a baseline
    pipeline = Pipeline(seed=4)
    pipeline.windows(40, [quiet(error_rate=0.15)])
    pipeline.windows(3, [quiet(error_rate=0.6)])
    pipeline.finish()
    early = raised(pipeline, SignalKind.ERROR_RATE_SPIKE)
    assert early[:3] == [0, 1, 2] and [i for i in early if 10 <= i < 40] == []
    assert {40, 41} <= set(early)


def test_latency_regression() -> None:
    pipeline = steady_then(quiet(median_ms=300.0))
    assert raised(pipeline, SignalKind.LATENCY_REGRESSION) == [40, 41, 42]
    assert raised(pipeline, SignalKind.SLOW_ENDPOINT) == []  # still under the static 1 s
    signal = next(s for s in pipeline.run.signals[40] if s.kind is SignalKind.LATENCY_REGRESSION)
    baseline = signal.evidence.baseline
    assert baseline is not None
    assert signal.value >= 2 * baseline.metrics["p95_ms"].value
    assert signal.evidence.samples[0].duration_ms == max(f.duration_ms or 0 for f in signal.evidence.samples)


def test_streaming_detector_catches_a_lesser_regression() -> None:
    base, change = quiet(median_ms=150.0, sigma=0.1), quiet(median_ms=150.0 * 1.7, sigma=0.1)
    with_detector = steady_then(change, base=base, before=60, seed=2)
    without = steady_then(
        change, base=base, before=60, seed=2, baseline_config=BaselineConfig(detector=False)
    )
    hits = raised(with_detector, SignalKind.LATENCY_REGRESSION)
    assert hits and hits[0] in (60, 61, 62)
    signal = next(s for s in with_detector.run.signals[hits[0]] if s.kind is SignalKind.LATENCY_REGRESSION)
    assert (signal.evidence.detector_score or 0) >= 0.5
    assert raised(without, SignalKind.LATENCY_REGRESSION) == []


def test_slow_endpoint_static_then_relative() -> None:
    slow = Pipeline(seed=5)
    slow.windows(30, [quiet(route="/report", median_ms=1500.0, sigma=0.1)])
    slow.finish()
    hits = raised(slow, SignalKind.SLOW_ENDPOINT)
    assert hits[:10] == list(range(10))  # static threshold until the baseline has 10 windows
    assert [i for i in hits if i >= 10] == []  # slow by nature: not news once known
    signal = slow.run.signals[0][0]
    assert signal.severity is Severity.WARNING and "/report" in signal.title

    regressed = steady_then(quiet(median_ms=1200.0))
    assert raised(regressed, SignalKind.SLOW_ENDPOINT) == [40, 41, 42]


def test_slow_query() -> None:
    pipeline = steady_then(quiet(queries=[(ORDER, 450.0, 1), (LOOP, 4.0, 1)]))
    assert raised(pipeline, SignalKind.SLOW_QUERY) == [40, 41, 42]
    signal = next(s for s in pipeline.run.signals[40] if s.kind is SignalKind.SLOW_QUERY)
    assert signal.statement == ORDER and signal.value >= 300.0
    assert signal.fingerprint == fingerprint(SignalKind.SLOW_QUERY, "p1", "shop", ORDER)
    assert signal.evidence.query is not None and signal.evidence.query.max_ms == signal.value
    # the requests running the slow query are the slow requests: the evidence shares their traces
    stats = signal.evidence.stats
    assert stats is not None and set(signal.trace_ids) & set(stats.sample_trace_ids)


def test_n_plus_one() -> None:
    pipeline = steady_then(quiet(queries=[(ORDER, 2.0, 1), (LOOP, 1.0, 30)]))
    assert raised(pipeline, SignalKind.N_PLUS_ONE) == [40, 41, 42]
    signal = next(s for s in pipeline.run.signals[40] if s.kind is SignalKind.N_PLUS_ONE)
    assert signal.value == 30 and signal.statement == LOOP and signal.endpoint == "GET /orders/{id}"
    assert len(signal.trace_ids) == 1
    assert signal.evidence.query is not None and signal.evidence.query.max_per_trace == 30


def test_high_frequency_query() -> None:
    pipeline = steady_then(quiet(queries=[(ORDER, 2.0, 1), (LOOP, 1.0, 4)]))
    assert raised(pipeline, SignalKind.HIGH_FREQUENCY_QUERY) == [40, 41, 42]  # 240 runs a minute
    assert raised(pipeline, SignalKind.N_PLUS_ONE) == []
    signal = next(s for s in pipeline.run.signals[40] if s.kind is SignalKind.HIGH_FREQUENCY_QUERY)
    assert signal.value == 240 and signal.statement == LOOP


def test_static_defaults_and_severity_without_baseline() -> None:
    stats = WindowStats(
        project="p",
        service="s",
        endpoint="GET /x",
        kind="server",
        window_start=T0,
        window_end=T0 + 60,
        count=100,
        errors=40,
        p95_ms=3500.0,
        queries=[
            QueryStats(
                statement="SELECT ?", db_system="pg", count=1200, traces=100, max_per_trace=12, max_ms=320.0
            )
        ],
    )
    kinds = {s.kind: s.severity for s in detect(stats)}
    assert kinds == {
        SignalKind.ERROR_RATE_SPIKE: Severity.CRITICAL,
        SignalKind.SLOW_ENDPOINT: Severity.CRITICAL,
        SignalKind.SLOW_QUERY: Severity.INFO,
        SignalKind.HIGH_FREQUENCY_QUERY: Severity.CRITICAL,
    }
    strict = SignalConfig(n_plus_one_per_trace=10, slow_query_ms=500, min_errors=50)
    kinds_strict = {s.kind for s in detect(stats, None, strict)}
    assert kinds_strict == {SignalKind.SLOW_ENDPOINT, SignalKind.HIGH_FREQUENCY_QUERY, SignalKind.N_PLUS_ONE}


def test_a_lasting_regression_is_not_learned_as_normal_within_the_hour() -> None:
    damped = steady_then(quiet(median_ms=300.0), after=20)
    assert raised(damped, SignalKind.LATENCY_REGRESSION) == list(range(40, 60))
    undamped = steady_then(
        quiet(median_ms=300.0), after=20, baseline_config=BaselineConfig(anomaly_weight=1.0)
    )
    assert len(raised(undamped, SignalKind.LATENCY_REGRESSION)) < 10
