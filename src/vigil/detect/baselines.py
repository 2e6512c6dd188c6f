"""Rolling per-endpoint baselines that survive restarts.

For each (project, service, endpoint) a `Baseline` keeps an exponentially weighted mean and variance
of six per-window metrics: latency p95, error rate, request count, the slowest query, the most
executed query and the most repeated query within one trace. Latency and count-like metrics are kept
as log1p, where their noise is closer to symmetric. Per metric, `ready` says whether enough windows
were seen for thresholds relative to the baseline (`min_windows`); until then signals use static
thresholds.

A window that raised a signal about a metric teaches that metric with a reduced weight
(`anomaly_weight`), so a regression is not learned as the new normal within a few windows; a lasting
change still is, after about span / anomaly_weight windows.

Optionally a `StreamingDetector` follows each endpoint's latency p95 series; its score for the
current window is part of the snapshot (`detector_score`). It is the largest part of the state (about
6 kB per endpoint in memory with the default 32-point window, against about 0.5 kB without it).
Its new-extreme rule (a p95 beyond everything the endpoint showed, by 5 % of that range, scores 1)
applies only after `detector_extreme_after` windows, a day of the default 60 s windows (the
service waits a day of its windows, and at least that many: `BaselineConfig.for_window`): until the
range has seen a whole daily cycle, the day's first climb makes new extremes, and in noise the
chance that window n is a new extreme falls as 1/n, so a young endpoint's are frequent. A high
score lowers the latency-regression threshold, so an earlier start raises false regressions; see
bench/service_extreme.py and docs/benchmarks.md (section o) for the measurement.

`BaselineStore` holds the baselines (bounded, least recently updated evicted first) and its
`state()` / `from_state()` round-trip through JSON.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vigil.detect.anomaly import DetectorConfig, StreamingDetector
from vigil.detect.stats import OTHER, WindowStats

__all__ = ["METRICS", "Baseline", "BaselineConfig", "BaselineSnapshot", "BaselineStore", "MetricBaseline"]

METRICS = ("p95_ms", "error_rate", "count", "query_max_ms", "query_max_count", "max_per_trace")
_LOG = frozenset({"p95_ms", "count", "query_max_ms", "query_max_count", "max_per_trace"})
_STATE_VERSION = 1


class BaselineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    span_windows: int = Field(60, ge=1)  # EWMA span: weight 2 / (span + 1) per window
    min_windows: int = Field(10, ge=1)
    min_count: int = Field(3, ge=1)  # requests a window needs to teach latency and error rate
    anomaly_weight: float = Field(0.1, ge=0, le=1)
    max_entries: int = Field(100_000, ge=1)
    ttl_s: float = Field(7 * 86400.0, gt=0)
    detector: bool = True
    detector_window: int = Field(32, ge=8)
    detector_warmup: int = Field(20, ge=0)
    detector_extreme_tolerance: float = Field(0.05, ge=0)  # the new-extreme rule's margin (0: off)
    detector_extreme_after: int = Field(1440, ge=0)  # windows before it applies (see above)

    @classmethod
    def for_window(cls, window_s: float) -> BaselineConfig:
        """The defaults for windows of `window_s`: the new-extreme rule waits for a day of them,
        and for at least its default count (the two reasons it waits, above)."""
        least = cls.model_fields["detector_extreme_after"].default
        return cls(detector_extreme_after=max(least, math.ceil(86400.0 / window_s)))

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(
            window=self.detector_window,
            warmup=self.detector_warmup,
            likelihood_min_n=max(2, self.detector_warmup // 2),
            seasonal=False,
            season_buckets=1,
            suppress=10,
            extreme_tolerance=self.detector_extreme_tolerance,
            extreme_warmup=self.detector_extreme_after,
        )


class MetricBaseline(BaseModel):
    value: float  # the EWMA mean, in the metric's own unit
    spread: float  # EW standard deviation, in log1p units for log metrics
    log: bool
    windows: int
    ready: bool

    def upper(self, k: float) -> float:
        """The value k spreads above the mean, in the metric's own unit."""
        if self.log:
            return math.expm1(math.log1p(self.value) + k * self.spread)
        return self.value + k * self.spread


class BaselineSnapshot(BaseModel):
    project: str
    service: str
    endpoint: str
    windows: int
    last_seen: float
    metrics: dict[str, MetricBaseline]
    detector_score: float | None = None

    def ready(self, metric: str) -> MetricBaseline | None:
        found = self.metrics.get(metric)
        return found if found is not None and found.ready else None


def window_metrics(stats: WindowStats, config: BaselineConfig) -> dict[str, float]:
    """The values a window contributes, by metric; a metric the window says nothing about is absent."""
    out: dict[str, float] = {}
    if stats.count > 0:
        out["count"] = float(stats.count)
    if stats.count >= config.min_count:
        out["error_rate"] = stats.error_rate
        if stats.p95_ms is not None:
            out["p95_ms"] = stats.p95_ms
    queries = [q for q in stats.queries if q.statement != OTHER]
    if queries:
        out["query_max_count"] = float(max(q.count for q in queries))
        timed = [q.max_ms for q in queries if q.max_ms is not None]
        if timed:
            out["query_max_ms"] = max(timed)
        if any(q.traces for q in queries):
            out["max_per_trace"] = float(stats.max_identical_per_trace)
    return out


class Baseline:
    """One endpoint's baseline: per metric mean, variance and window count in one float array."""

    __slots__ = ("detector", "last_seen", "score", "values", "windows")

    def __init__(self, detector: StreamingDetector | None = None) -> None:
        self.values = array("d", bytes(8 * 3 * len(METRICS)))
        self.windows = 0
        self.last_seen = 0.0
        self.detector = detector
        self.score: float | None = None

    def assess(self, stats: WindowStats, config: BaselineConfig) -> float | None:
        """Score this window's latency with the detector (which learns from it); None without one."""
        self.score = None
        if self.detector is not None and stats.p95_ms is not None and stats.count >= config.min_count:
            self.score = self.detector.update(stats.window_start, math.log1p(stats.p95_ms))
        return self.score

    def learn(self, stats: WindowStats, config: BaselineConfig, anomalous: Iterable[str] = ()) -> None:
        damped = set(anomalous)
        alpha = 2.0 / (config.span_windows + 1)
        self.windows += 1
        self.last_seen = max(self.last_seen, stats.window_end)
        for name, x in window_metrics(stats, config).items():
            i = 3 * METRICS.index(name)
            if name in _LOG:
                x = math.log1p(x)
            v = self.values
            n = v[i + 2] + 1
            v[i + 2] = n
            if n == 1:
                v[i], v[i + 1] = x, 0.0
                continue
            a = max(alpha, 1.0 / n)
            if name in damped and n > config.min_windows:
                a *= config.anomaly_weight
            d = x - v[i]
            v[i] += a * d
            v[i + 1] = (1.0 - a) * (v[i + 1] + a * d * d)

    def snapshot(self, key: tuple[str, str, str], config: BaselineConfig) -> BaselineSnapshot:
        metrics: dict[str, MetricBaseline] = {}
        for j, name in enumerate(METRICS):
            mean, var, n = self.values[3 * j : 3 * j + 3]
            if n == 0:
                continue
            log = name in _LOG
            metrics[name] = MetricBaseline(
                value=math.expm1(mean) if log else mean,
                spread=math.sqrt(max(var, 0.0)),
                log=log,
                windows=int(n),
                ready=n >= config.min_windows,
            )
        return BaselineSnapshot(
            project=key[0],
            service=key[1],
            endpoint=key[2],
            windows=self.windows,
            last_seen=self.last_seen,
            metrics=metrics,
            detector_score=self.score,
        )


class _EntryState(BaseModel):
    project: str
    service: str
    endpoint: str
    windows: int
    last_seen: float
    values: list[float] = Field(min_length=3 * len(METRICS), max_length=3 * len(METRICS))
    detector: dict[str, Any] | None = None


class _StoreState(BaseModel):
    version: int
    entries: list[_EntryState]
    detector_config: dict[str, Any] | None = None  # of every entry's detector saved without its own


class BaselineStore:
    """Baselines by (project, service, endpoint), bounded to `max_entries`."""

    def __init__(self, config: BaselineConfig | None = None) -> None:
        self.config = config or BaselineConfig()
        self._detector_config = self.config.detector_config() if self.config.detector else None
        self._entries: OrderedDict[tuple[str, str, str], Baseline] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, project: str, service: str, endpoint: str) -> Baseline | None:
        return self._entries.get((project, service, endpoint))

    def snapshot(self, project: str, service: str, endpoint: str) -> BaselineSnapshot | None:
        key = (project, service, endpoint)
        found = self._entries.get(key)
        return None if found is None else found.snapshot(key, self.config)

    def _entry(self, stats: WindowStats) -> tuple[tuple[str, str, str], Baseline]:
        key = (stats.project, stats.service, stats.endpoint)
        found = self._entries.get(key)
        if found is None:
            detector = StreamingDetector(self._detector_config) if self._detector_config else None
            found = self._entries[key] = Baseline(detector)
            while len(self._entries) > self.config.max_entries:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        return key, found

    def assess(self, stats: WindowStats) -> BaselineSnapshot:
        """The endpoint's baseline before this window, with the detector's score for the window."""
        key, baseline = self._entry(stats)
        baseline.assess(stats, self.config)
        return baseline.snapshot(key, self.config)

    def learn(self, stats: WindowStats, anomalous: Iterable[str] = ()) -> None:
        """Teach the window to its endpoint's baseline; metrics named in `anomalous` are damped."""
        _, baseline = self._entry(stats)
        baseline.learn(stats, self.config, anomalous)

    def prune(self, now: float) -> int:
        """Forget endpoints not seen for `ttl_s`; return how many were dropped."""
        stale = [k for k, b in self._entries.items() if b.last_seen < now - self.config.ttl_s]
        for key in stale:
            del self._entries[key]
        return len(stale)

    def state(self) -> dict[str, Any]:
        """Plain JSON types, built directly: with 10,000 endpoints, going through the models
        doubled the periodic save, which runs on the event loop. `from_state` validates."""
        entries = [
            {
                "project": k[0],
                "service": k[1],
                "endpoint": k[2],
                "windows": b.windows,
                "last_seen": b.last_seen,
                "values": list(b.values),
                "detector": None if b.detector is None else b.detector.state(with_config=False),
            }
            for k, b in self._entries.items()
        ]
        out: dict[str, Any] = {"version": _STATE_VERSION, "entries": entries}
        if self._detector_config is not None:
            out["detector_config"] = asdict(self._detector_config)
        return out

    @classmethod
    def from_state(cls, data: dict[str, Any], config: BaselineConfig | None = None) -> BaselineStore:
        state = _StoreState.model_validate(data)
        if state.version != _STATE_VERSION:
            raise ValueError(f"unsupported baseline state version {state.version!r}")
        store = cls(config)
        for e in state.entries:
            detector = None
            if store._detector_config is not None:
                # a detector saved with other settings (or none) starts afresh rather than mixing them
                # (a detector saved by an earlier version, whose settings or state differ, too)
                saved = e.detector
                detector = None
                wanted = asdict(store._detector_config)
                if saved is not None and saved.get("config", state.detector_config) == wanted:
                    try:
                        detector = StreamingDetector.from_state(saved, store._detector_config)
                    except (ValueError, KeyError, TypeError):
                        detector = None
                if detector is None:
                    detector = StreamingDetector(store._detector_config)
            baseline = Baseline(detector)
            baseline.values = array("d", e.values)
            baseline.windows = e.windows
            baseline.last_seen = e.last_seen
            store._entries[(e.project, e.service, e.endpoint)] = baseline
        return store
