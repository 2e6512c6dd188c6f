from __future__ import annotations

import json
import math
import random

import pytest

from vigil.detect.sketch import DDSketch

QUANTILES = (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def distributions() -> dict[str, list[float]]:
    rng = random.Random(42)
    n = 20_000
    return {
        "lognormal": [math.exp(rng.gauss(4.0, 1.0)) for _ in range(n)],
        "uniform": [rng.uniform(1.0, 1000.0) for _ in range(n)],
        "exponential": [rng.expovariate(1 / 50.0) for _ in range(n)],
        "pareto": [rng.paretovariate(1.5) for _ in range(n)],
        "bimodal": [rng.gauss(20, 2) if rng.random() < 0.9 else rng.gauss(2000, 100) for _ in range(n)],
    }


@pytest.mark.parametrize("name", sorted(distributions()))
def test_relative_error_within_two_percent(name: str) -> None:
    values = distributions()[name]
    sketch = DDSketch(alpha=0.01)
    for v in values:
        sketch.add(v)
    assert sketch.count == len(values)
    for q in QUANTILES:
        estimate = sketch.quantile(q)
        truth = exact(values, q)
        assert estimate is not None
        assert abs(estimate - truth) <= 0.02 * truth, (name, q, estimate, truth)


def test_merge_equals_one_sketch_of_everything() -> None:
    rng = random.Random(3)
    a_values = [math.exp(rng.gauss(3, 1)) for _ in range(5000)]
    b_values = [math.exp(rng.gauss(6, 0.5)) for _ in range(3000)] + [0.0] * 10
    a, b, both = DDSketch(), DDSketch(), DDSketch()
    for v in a_values:
        a.add(v)
        both.add(v)
    for v in b_values:
        b.add(v)
        both.add(v)
    a.merge(b)
    merged, direct = a.to_dict(), both.to_dict()
    assert merged.pop("sum") == pytest.approx(direct.pop("sum"))
    assert merged == direct
    for q in QUANTILES:
        assert a.quantile(q) == both.quantile(q)
    everything = a_values + b_values
    assert abs((a.quantile(0.99) or 0) - exact(everything, 0.99)) <= 0.02 * exact(everything, 0.99)


def test_bucket_count_is_bounded_and_the_tail_stays_accurate() -> None:
    rng = random.Random(5)
    values = [10 ** rng.uniform(-6, 6) for _ in range(20_000)]  # twelve orders of magnitude
    sketch = DDSketch(alpha=0.01, max_buckets=200)
    for v in values:
        sketch.add(v)
    assert len(sketch.to_dict()["counts"]) <= 200
    for q in (0.9, 0.99):
        truth = exact(values, q)
        assert abs((sketch.quantile(q) or 0) - truth) <= 0.02 * truth
    # the collapsed low end is where accuracy goes
    assert (sketch.quantile(0.01) or 0) > exact(values, 0.01) * 1.5


def test_adding_below_the_current_range_also_respects_the_bound() -> None:
    sketch = DDSketch(alpha=0.01, max_buckets=50)
    for v in (1e6, 1e3, 1.0, 1e-3):
        sketch.add(v)
    assert len(sketch.to_dict()["counts"]) <= 50
    assert sketch.quantile(1.0) == pytest.approx(1e6)
    assert sketch.count == 4


def test_round_trip_through_json() -> None:
    sketch = DDSketch()
    for v in (0.0, 1.5, 2.0, 250.0, 250.0, 9000.0):
        sketch.add(v)
    restored = DDSketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    assert restored.to_dict() == sketch.to_dict()
    assert [restored.quantile(q) for q in QUANTILES] == [sketch.quantile(q) for q in QUANTILES]
    assert restored.count == 6 and restored.sum == pytest.approx(sketch.sum)


def test_edges() -> None:
    empty = DDSketch()
    assert empty.quantile(0.5) is None and empty.count == 0
    assert DDSketch.from_dict(empty.to_dict()).quantile(0.99) is None
    zeros = DDSketch()
    zeros.add(0.0, 5)
    zeros.add(-3.0)  # clock skew: clamped to zero
    assert zeros.quantile(0.99) == 0.0 and zeros.count == 6
    single = DDSketch()
    single.add(42.0)
    assert single.quantile(0.0) == single.quantile(1.0) == 42.0  # clamped to the exact extremes
    with pytest.raises(ValueError):
        DDSketch(alpha=0.01).merge(DDSketch(alpha=0.02))
    with pytest.raises(ValueError):
        single.quantile(1.5)
    with pytest.raises(ValueError):
        single.add(math.nan)
