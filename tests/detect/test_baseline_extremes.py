"""The new-extreme rule in the service's per-endpoint baselines, driven through `evaluate` for days of
one-minute windows: steady noisy endpoints stay quiet, a lesser latency regression is caught sooner."""

from __future__ import annotations

import math
import random

from vigil.detect.baselines import BaselineConfig, BaselineStore
from vigil.detect.signals import Signal, SignalKind, evaluate
from vigil.detect.stats import ClosedWindow, WindowStats

T0 = 1_700_006_400.0  # a UTC midnight
DAY = 1440  # one-minute windows


def windows(seed: int, n: int, requests: int, sigma: float, daily: bool) -> list[tuple[float, int]]:
    """(p95 ms, errors) per window: lognormal request latencies around 200 ms (times a daily cycle
    that starts at the night's low) and 1 % errors."""
    rng = random.Random(seed)
    k = math.ceil(0.95 * requests) - 1
    out = []
    for i in range(n):
        median = 200.0 * (math.exp(0.3 * math.sin(2 * math.pi * (i / DAY - 0.25))) if daily else 1.0)
        durations = sorted(median * math.exp(rng.gauss(0, sigma)) for _ in range(requests))
        out.append((durations[k], sum(rng.random() < 0.01 for _ in range(requests))))
    return out


def drive(
    store: BaselineStore, endpoints: dict[str, tuple[int, list[tuple[float, int]]]]
) -> list[list[Signal]]:
    """Every endpoint's windows through the service's path, one closed window a minute."""
    out = []
    n = min(len(series) for _, series in endpoints.values())
    for i in range(n):
        start = T0 + 60 * i
        stats = [
            WindowStats(
                project="p",
                service="s",
                endpoint=name,
                kind="server",
                window_start=start,
                window_end=start + 60,
                count=requests,
                errors=series[i][1],
                p95_ms=series[i][0],
            )
            for name, (requests, series) in endpoints.items()
        ]
        closed = ClosedWindow(
            project="p", service="s", window_start=start, window_end=start + 60, endpoints=stats
        )
        out.append(evaluate(closed, store))
    return out


def test_steady_noisy_endpoints_raise_nothing_for_two_days() -> None:
    endpoints = {
        "GET /daily": (60, windows(1, 3000, 60, 0.5, daily=True)),
        "GET /daily2": (60, windows(2, 3000, 60, 0.5, daily=True)),
        "GET /sparse": (20, windows(1, 3000, 20, 0.3, daily=True)),
        "GET /busy": (300, windows(1, 3000, 300, 0.5, daily=False)),
    }
    store = BaselineStore()
    signals = drive(store, endpoints)
    # (the first `min_windows` use static thresholds only: none of these endpoints reaches them)
    assert [s.title for batch in signals for s in batch] == []
    for name in endpoints:  # the rule was on for the second day
        baseline = store.get("p", "s", name)
        assert baseline is not None and baseline.detector is not None
        assert (
            baseline.detector.n > store.config.detector_extreme_after
            and baseline.detector.highest is not None
        )
    # the same traffic with the rule on from the detector's warmup: the daily cycle's first climb
    # and a young endpoint's narrow range make new extremes, and false regressions
    early = drive(BaselineStore(BaselineConfig(detector_extreme_after=20)), endpoints)
    false = [s for batch in early[:DAY] for s in batch if s.kind is SignalKind.LATENCY_REGRESSION]
    assert false and all("anomaly score 1.00" in s.title for s in false)


def test_a_lesser_regression_after_a_day_is_caught_in_its_first_window() -> None:
    steady = windows(1, 2503, 300, 0.5, daily=False)
    # from window 2500: latency 1.7x (under the 2x of the baseline) and 20 % errors
    changed = [(p * 1.7, 60) if i >= 2500 else (p, e) for i, (p, e) in enumerate(steady)]

    def after(config: BaselineConfig) -> dict[SignalKind, list[Signal]]:
        signals = drive(BaselineStore(config), {"GET /a": (300, changed)})
        assert [s for batch in signals[10:2500] for s in batch] == []
        found: dict[SignalKind, list[Signal]] = {}
        for i in range(2500, 2503):
            for s in signals[i]:
                found.setdefault(s.kind, []).append(s)
        return found

    with_rule, without = after(BaselineConfig()), after(BaselineConfig(detector_extreme_tolerance=0.0))
    first = with_rule[SignalKind.LATENCY_REGRESSION][0]
    assert first.window_start == T0 + 60 * 2500 and "anomaly score 1.00" in first.title
    # the likelihood stages alone do not score it high enough to lower the threshold
    assert SignalKind.LATENCY_REGRESSION not in without
    for found in (with_rule, without):
        assert found[SignalKind.ERROR_RATE_SPIKE][0].window_start == T0 + 60 * 2500
