from __future__ import annotations

import json
import math
import random
import tracemalloc

import pytest

from tests.detect.traffic import T0
from vigil.detect.baselines import BaselineConfig, BaselineStore
from vigil.detect.stats import QueryStats, WindowStats


def window(i: int, p95: float, *, endpoint: str = "GET /a", count: int = 100, errors: int = 1) -> WindowStats:
    return WindowStats(
        project="p",
        service="s",
        endpoint=endpoint,
        kind="server",
        window_start=T0 + 60 * i,
        window_end=T0 + 60 * (i + 1),
        count=count,
        errors=errors,
        p95_ms=p95,
        max_identical_per_trace=3,
        queries=[
            QueryStats(
                statement="SELECT ?", db_system="pg", count=300, traces=100, max_per_trace=3, max_ms=12.0
            )
        ],
    )


def series(n: int, seed: int = 1, level: float = 120.0) -> list[WindowStats]:
    rng = random.Random(seed)
    return [window(i, level * math.exp(rng.gauss(0, 0.1)), errors=rng.randint(0, 3)) for i in range(n)]


def teach(store: BaselineStore, windows: list[WindowStats]) -> list[float | None]:
    scores = []
    for w in windows:
        scores.append(store.assess(w).detector_score)
        store.learn(w)
    return scores


def test_baseline_learns_levels_and_becomes_ready() -> None:
    store = BaselineStore(BaselineConfig(min_windows=10))
    teach(store, series(9))
    snap = store.snapshot("p", "s", "GET /a")
    assert snap is not None and snap.windows == 9 and snap.ready("p95_ms") is None
    teach(store, series(60, seed=2)[9:])
    snap = store.snapshot("p", "s", "GET /a")
    assert snap is not None
    p95 = snap.ready("p95_ms")
    assert p95 is not None and p95.value == pytest.approx(120.0, rel=0.1)
    assert 0.03 < p95.spread < 0.2  # log-space spread of the 10% noise
    error_rate = snap.ready("error_rate")
    assert error_rate is not None and error_rate.value == pytest.approx(0.015, abs=0.008)
    assert snap.metrics["count"].value == pytest.approx(100.0)
    assert snap.metrics["query_max_count"].value == pytest.approx(300.0)
    assert snap.metrics["query_max_ms"].value == pytest.approx(12.0)
    assert snap.metrics["max_per_trace"].value == pytest.approx(3.0)
    assert store.snapshot("p", "s", "GET /other") is None


def test_state_round_trip_keeps_baselines_and_detectors() -> None:
    store = BaselineStore()
    teach(store, series(50))
    teach(store, [window(i, 80.0, endpoint="POST /b") for i in range(12)])
    saved = json.loads(json.dumps(store.state()))
    # one detector config for the store, not one per endpoint
    assert saved["detector_config"] and all("config" not in e["detector"] for e in saved["entries"])
    restored = BaselineStore.from_state(saved)
    assert len(restored) == 2
    for endpoint in ("GET /a", "POST /b"):
        old, new = store.snapshot("p", "s", endpoint), restored.snapshot("p", "s", endpoint)
        assert old is not None and new is not None
        assert new.model_dump(exclude={"detector_score"}) == old.model_dump(exclude={"detector_score"})
    # both continue identically, detector included
    more = [*series(70, seed=9)[50:], window(70, 400.0)]
    assert teach(restored, more) == teach(store, more)
    assert restored.snapshot("p", "s", "GET /a") == store.snapshot("p", "s", "GET /a")


def test_detector_settings_change_restarts_the_detector_only() -> None:
    store = BaselineStore()
    teach(store, series(40))
    other = BaselineStore.from_state(store.state(), BaselineConfig(detector_window=16))
    before = store.snapshot("p", "s", "GET /a")
    after = other.snapshot("p", "s", "GET /a")
    assert before is not None and after is not None and after.metrics == before.metrics
    baseline = other.get("p", "s", "GET /a")
    assert baseline is not None and baseline.detector is not None and baseline.detector.n == 0
    plain = BaselineStore.from_state(store.state(), BaselineConfig(detector=False))
    assert (plain.get("p", "s", "GET /a") or pytest.fail()).detector is None


def test_detector_state_of_an_earlier_version_restarts_the_detector_only() -> None:
    store = BaselineStore()
    teach(store, series(40))
    state = json.loads(json.dumps(store.state()))
    saved = state["entries"][0]["detector"]
    # as the single-scale detector saved it: same settings key, version 1, no scales
    saved["version"] = 1
    saved["likelihood"] = saved.pop("scales")[0]
    restored = BaselineStore.from_state(state)
    baseline = restored.get("p", "s", "GET /a")
    assert baseline is not None and baseline.detector is not None and baseline.detector.n == 0
    assert restored.snapshot("p", "s", "GET /a") is not None
    assert teach(restored, series(3, seed=5))  # and it goes on scoring


def test_anomalous_windows_teach_less() -> None:
    plain, damped = BaselineStore(), BaselineStore()
    history = series(30)
    teach(plain, history)
    teach(damped, history)
    spike = window(30, 1200.0)
    plain.learn(spike)
    damped.learn(spike, anomalous={"p95_ms"})
    base = (plain.snapshot("p", "s", "GET /a") or pytest.fail()).metrics
    less = (damped.snapshot("p", "s", "GET /a") or pytest.fail()).metrics
    assert less["p95_ms"].value < base["p95_ms"].value
    assert (less["p95_ms"].value - 120) < 0.2 * (base["p95_ms"].value - 120)
    assert less["error_rate"] == base["error_rate"]  # only the named metric is damped


def test_small_windows_do_not_teach_latency() -> None:
    store = BaselineStore(BaselineConfig(min_count=5))
    store.learn(window(0, 9000.0, count=2, errors=2))
    snap = store.snapshot("p", "s", "GET /a")
    assert snap is not None and "p95_ms" not in snap.metrics and "error_rate" not in snap.metrics
    assert snap.metrics["count"].value == pytest.approx(2.0)


def test_store_is_bounded_and_prunes_stale_endpoints() -> None:
    store = BaselineStore(BaselineConfig(max_entries=3, ttl_s=3600))
    for i in range(5):
        store.learn(window(i, 100.0, endpoint=f"GET /{i}"))
    assert len(store) == 3 and store.get("p", "s", "GET /0") is None and store.get("p", "s", "GET /4")
    assert store.prune(T0 + 60 * 4 + 3600 + 30) == 2  # GET /2 and /3 ended over an hour before
    assert [store.get("p", "s", f"GET /{i}") is not None for i in (2, 3, 4)] == [False, False, True]


@pytest.mark.parametrize(("detector", "limit"), [(False, 1_500), (True, 14_000)])
def test_memory_per_endpoint(detector: bool, limit: int) -> None:
    store = BaselineStore(BaselineConfig(detector=detector))
    ws = [window(i, 100.0 + i % 7) for i in range(25)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for e in range(100):
            for w in ws:
                w2 = w.model_copy(update={"endpoint": f"GET /e{e}"})
                store.assess(w2)
                store.learn(w2)
        per_endpoint = (tracemalloc.get_traced_memory()[0] - before) / 100
    finally:
        tracemalloc.stop()
    assert per_endpoint < limit, per_endpoint


def test_the_new_extreme_rule_waits_a_day_of_windows_and_at_least_1440() -> None:
    assert BaselineConfig.for_window(60).detector_extreme_after == 1440
    assert BaselineConfig().detector_extreme_after == 1440
    assert BaselineConfig.for_window(10).detector_extreme_after == 8640
    assert BaselineConfig.for_window(300).detector_extreme_after == 1440
    detector = BaselineStore(BaselineConfig.for_window(10)).config.detector_config()
    assert detector.extreme_warmup == 8640 and detector.extreme_tolerance == 0.05
