"""Streaming anomaly detector for one numeric series.

`StreamingDetector.update(timestamp, value)` returns an anomaly score in [0, 1] computed only from the
points seen so far and the new one; higher is more anomalous. It is pure Python, O(log W) per point,
and its whole state is a JSON-serialisable dict (`state()` / `from_state()`), so one detector per
series can be kept for thousands of series (e.g. per-endpoint error rate or latency p95 per window).

How a score is made, per point:

1. *Surprises*, each measured against history that excludes the new point:
   * value: how extreme the value is within the last `window` values (an empirical rank, -log of the
     tail fraction, plus how far it lies beyond the observed range in inter-quartile units);
   * change: robust z-score of |value - previous value| against the last `window` such changes;
   * seasonal: deviation from an exponentially weighted time-of-day profile (`season_buckets` per
     UTC day). It is used only once `season_min_days` days were seen and only while the series is
     actually seasonal (the profile explains at least `season_strength` of the absolute deviation).
   * recurrence: whether at least `recur_min` earlier days (of the last `recur_days`, within the
     value window) had a value near this one at about this time of day: within `recur_tolerance`
     of its distance from the median, give or take a twelfth of a day (so a daily job's spike that
     drifts by minutes still counts). The period is a day in points, from the typical spacing of the
     timestamps. Most ordinary values recur; a value new for its time of day does not.
2. Each surprise goes through an anomaly-likelihood stage (as in Numenta's anomaly likelihood): the
   mean of its last `short` values is compared with the long-run mean and spread of that mean
   (exponentially weighted, `long_alpha`), giving a z-value. A surprise that is always high on this
   series (a noisy or spiky series) therefore stops counting; a jump in surprise counts.
3. The z-values are combined. When the seasonal profile is trusted it can veto the others: a value or
   change that the time of day explains (a daily spike) counts at most `veto_margin` above the
   seasonal z. A recurring value counts at most `veto_margin` (below `alert_level`): only what
   earlier days did not show at this time can alert; a change right after a recurring value counts
   no more than the value surprise (or `veto_margin`), so the fall back from a daily spike is
   expected too. Without a day of history in the window, nothing counts as recurring.
4. z maps to (0, 1) as z / (z + z_half). The first `warmup` points score 0.
5. Alert once: for `suppress` points after a score above `alert_level`, scores that do not beat it
   are multiplied by `suppress_factor`, so a lasting change gives one high score, not a run of them.
6. Steps 2 to 5 run at two time scales, `short` = 1 (a single surprising point) and `second_short` =
   3 (a few in a row), each with its own likelihood statistics and alert memory; the score is their
   mean (either alone is brittle: one misses slow onsets, the other isolated spikes).
7. New extreme (Numenta's NAB detector's "spatial anomaly" rule, with its 5 %): after the warmup, a
   value beyond the whole range seen so far by more than `extreme_tolerance` of that range scores 1,
   whatever the likelihood stages say (they learn that a spiky series is always surprising, and so
   also discount its first spike to a new height). The range grows from the first point; the rule
   scores only after the warmup and `extreme_warmup` points (the service's per-endpoint detectors
   wait longer than their warmup for the range to be established).

Timestamps are taken in arrival order: one earlier than the last (out of order) or equal to it
(duplicate) is scored like any other point, against everything seen so far; its time of day still
places it in the profile, and only forward steps teach the typical spacing. A gap is not filled in.

Settings are chosen by leave-one-category-out cross-validation on the development half of the
Numenta Anomaly Benchmark (29 series, 3 categories; bench/nab_cv.py) from a small grid (`short`,
`second_short`, `recur_days`, `suppress`); nothing is tuned per series. NAB standard score: 70.6
cross-validated (each category scored with settings chosen on the other two), 73.5 on the whole
development half (standard / reward low FP / reward low FN: 73.5 / 69.8 / 76.3, one global threshold,
about 0.52), against windowed Gaussian 35.0 and Numenta HTM 74.0. The other defaults (window,
z_half, veto_margin, ...) were set on the whole development half before the cross-validation
existed, which therefore does not cover them; the new-extreme rule's 5 % is Numenta's, not fitted.
About 50k points/s on one core. State: two windows of `window` floats plus ~3 x `season_buckets`
numbers (about 33 kB as JSON with the defaults).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from vigil.detect.rolling import Likelihood, RollingWindow

__all__ = ["DetectorConfig", "StreamingDetector"]

STATE_VERSION = 2
_DAY = 86400.0
_TINY = 1e-12


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings. The defaults are the benchmarked configuration."""

    window: int = 1000  # values (and changes) kept for the value and change surprises
    warmup: int = 150  # points that always score 0 while the model fills
    short: int = 1  # points averaged in the likelihood stage
    second_short: int = 3  # a second likelihood scale whose score is averaged in (0: none)
    long_alpha: float = 0.0005  # weight of a new point in the long-run likelihood statistics
    likelihood_min_n: int = 100  # points a likelihood stage must see before it scores
    seasonal: bool = True
    season_buckets: int = 96  # time-of-day slots per UTC day
    season_alpha: float = 0.2  # weight of a new point in its slot's profile
    season_min_days: int = 3  # days (and points per slot) before the profile is used
    season_strength: float = 0.4  # share of deviation the profile must explain to be trusted
    season_strength_alpha: float = 0.01
    veto_margin: float = 3.0
    z_half: float = 4.0  # likelihood z that maps to a score of 0.5
    alert_level: float = 0.5
    suppress: int = 200
    suppress_factor: float = 0.5
    recur_days: int = 7  # past days searched for a value like this one near this time (0: off)
    recur_min: int = 2  # days that must show it for the point to count as recurring
    recur_tolerance: float = 0.25  # how close, as a share of the point's distance from the median
    recur_slack_share: int = 12  # points searched either side: period / this (2 h of a day)
    extreme_tolerance: float = 0.05  # beyond the range seen by this share of it: score 1 (<= 0: off)
    extreme_warmup: int = 0  # points before the new-extreme rule applies, if more than `warmup`

    def __post_init__(self) -> None:
        for name in ("window", "short", "season_buckets"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in (
            "warmup",
            "likelihood_min_n",
            "season_min_days",
            "suppress",
            "second_short",
            "recur_days",
            "recur_min",
            "extreme_warmup",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("long_alpha", "season_alpha", "season_strength_alpha"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1]")
        if self.z_half <= 0:
            raise ValueError("z_half must be > 0")
        if not 0.0 <= self.suppress_factor <= 1.0:
            raise ValueError("suppress_factor must be in [0, 1]")


class _Scale:
    """One likelihood time scale: its three likelihood stages and its alert-once memory."""

    __slots__ = ("change", "last_alert", "last_alert_score", "season", "value")

    def __init__(self, short: int, config: DetectorConfig) -> None:
        self.value = Likelihood(short, config.long_alpha, config.likelihood_min_n)
        self.change = Likelihood(short, config.long_alpha, config.likelihood_min_n)
        self.season = Likelihood(short, config.long_alpha, config.likelihood_min_n)
        self.last_alert = -(10**9)
        self.last_alert_score = 0.0

    def score(self, n: int, surprises: _Surprises, config: DetectorConfig) -> float:
        c = config
        z_value = None if surprises.value is None else self.value.update(surprises.value)
        z_change = None if surprises.change is None else self.change.update(surprises.change)
        z_season: float | None = None
        if surprises.season is not None:
            z_all = self.season.update(surprises.season)
            if surprises.season_trusted:
                z_season = z_all
        base = z_value if z_change is None else (z_change if z_value is None else max(z_value, z_change))
        if surprises.recurring and base is not None:
            base = min(base, c.veto_margin)
        elif surprises.after_recurring and z_change is not None and base == z_change:
            # right after a recurring value, a change is no more surprising than the value itself
            base = min(base, max(z_value or 0.0, c.veto_margin))
        if z_season is None:
            z = base if base is not None else 0.0
        elif base is None:
            z = z_season
        else:
            z = max(z_season, min(base, z_season + c.veto_margin))
        score = z / (z + c.z_half) if z > 0 else 0.0
        if n <= c.warmup:
            score = 0.0
        since = n - self.last_alert
        out = score
        if since < c.suppress and score <= self.last_alert_score:
            out = score * c.suppress_factor
        if score > c.alert_level and (since >= c.suppress or score > self.last_alert_score):
            self.last_alert = n
            self.last_alert_score = score
        return out

    def to_list(self) -> list[Any]:
        """[last_alert, last_alert_score, value, change, season likelihoods]."""
        return [
            self.last_alert,
            self.last_alert_score,
            self.value.to_list(),
            self.change.to_list(),
            self.season.to_list(),
        ]

    def load(self, data: list[Any]) -> None:
        self.last_alert = int(data[0])
        self.last_alert_score = float(data[1])
        self.value.load(data[2])
        self.change.load(data[3])
        self.season.load(data[4])


@dataclass(slots=True)
class _Surprises:
    """What one point shows before any likelihood stage, shared by every scale."""

    value: float | None = None
    change: float | None = None
    season: float | None = None
    season_trusted: bool = False
    recurring: bool = False
    after_recurring: bool = False


class StreamingDetector:
    """Scores one numeric series point by point; see the module docstring for the method."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = c = config or DetectorConfig()
        self.n = 0
        self.prev: float | None = None
        self.values = RollingWindow(c.window)
        self.changes = RollingWindow(c.window)
        self.scales = [_Scale(c.short, c)] + ([_Scale(c.second_short, c)] if c.second_short else [])
        self.first_ts: float | None = None
        self.season_mean = [0.0] * c.season_buckets
        self.season_dev = [0.0] * c.season_buckets
        self.season_n = [0] * c.season_buckets
        self.residual_dev = 0.0  # mean |value - seasonal profile|
        self.total_dev = 0.0  # mean |value - rolling median|
        self.step = 0.0  # exponentially weighted seconds between points
        self.last_ts: float | None = None
        self.prev_recurring = False
        self.lowest: float | None = None  # all-time range, for the new-extreme rule
        self.highest: float | None = None

    def update(self, timestamp: float, value: float) -> float:
        """Add one point (timestamp in epoch seconds) and return its anomaly score in [0, 1]."""
        if not (math.isfinite(value) and math.isfinite(timestamp)):
            raise ValueError(f"timestamp and value must be finite, got {timestamp!r}, {value!r}")
        c = self.config
        self.n += 1
        if self.first_ts is None:
            self.first_ts = timestamp

        seen = _Surprises()
        held = len(self.values.items)
        if held >= 10:
            seen.value = self.values.rank_surprise(value)
            if self.prev is not None and len(self.changes.items) >= 10:
                seen.change = math.log1p(self.changes.robust_z(abs(value - self.prev)))
        if c.seasonal:
            self._seasonal(timestamp, value, seen)
        # (a day of points must be in the window before a day can be looked back on)
        seen.recurring = c.recur_days > 0 and held * self.step >= 0.9 * _DAY and self._recurring(value)
        seen.after_recurring, self.prev_recurring = self.prev_recurring, seen.recurring
        if self.last_ts is not None and timestamp > self.last_ts:
            gap = timestamp - self.last_ts
            self.step = gap if self.step == 0.0 else self.step + 0.05 * (gap - self.step)
        self.last_ts = timestamp

        if self.prev is not None:
            self.changes.add(abs(value - self.prev))
        self.values.add(value)
        self.prev = value

        total = 0.0
        for scale in self.scales:
            total += scale.score(self.n, seen, c)
        out = total / len(self.scales)
        if self._new_extreme(value) and self.n > c.warmup and self.n > c.extreme_warmup:
            out = 1.0
        return min(1.0, max(0.0, out))

    def _new_extreme(self, value: float) -> bool:
        """Whether the value lies beyond everything seen before by more than `extreme_tolerance` of
        that range (Numenta's NAB detector's spatial anomaly rule, with its 5 %); then the range grows.
        (Most values fall inside the range: two comparisons, nothing stored.)"""
        tolerance = self.config.extreme_tolerance
        if tolerance <= 0:
            return False
        lo, hi = self.lowest, self.highest
        if lo is None or hi is None:
            self.lowest = self.highest = value
            return False
        if value > hi:
            self.highest = value
            return hi > lo and value > hi + (hi - lo) * tolerance
        if value < lo:
            self.lowest = value
            return hi > lo and value < lo - (hi - lo) * tolerance
        return False

    def _recurring(self, value: float) -> bool:
        """Whether earlier days showed the same deviation from the median near this time of day
        (within a few points, so a daily spike that drifts by minutes still counts)."""
        c = self.config
        if self.step <= 0.0 or len(self.values) < 10:
            return False
        period = round(_DAY / self.step)
        slack = max(1, period // c.recur_slack_share)
        if period < 4 or len(self.values) < period - slack:
            return False
        deviation = abs(value - self.values.quantile(0.5))
        if deviation <= 0.0:
            return False
        tolerance = c.recur_tolerance * deviation
        items = self.values.items
        n = len(items)
        seen = 0
        for day in range(1, c.recur_days + 1):
            centre = n - day * period
            if centre - slack < 0:
                break
            for i in range(centre - slack, min(n, centre + slack + 1)):
                if abs(items[i] - value) <= tolerance:
                    seen += 1
                    break
            if seen >= c.recur_min:
                return True
        return False

    def _seasonal(self, timestamp: float, value: float, seen: _Surprises) -> None:
        """Update the time-of-day profile; note the seasonal surprise once the profile is usable."""
        c = self.config
        assert self.first_ts is not None
        b = int((timestamp % _DAY) / _DAY * c.season_buckets) % c.season_buckets
        days = (timestamp - self.first_ts) / _DAY
        if self.season_n[b] >= c.season_min_days and days >= c.season_min_days:
            residual = abs(value - self.season_mean[b])
            season_z = residual / (self.season_dev[b] * 1.2533 + 1e-9)
            seen.season = math.log1p(season_z)
            if len(self.values) >= 10:
                a = c.season_strength_alpha
                self.residual_dev += a * (residual - self.residual_dev)
                self.total_dev += a * (abs(value - self.values.quantile(0.5)) - self.total_dev)
            seen.season_trusted = 1.0 - self.residual_dev / (self.total_dev + _TINY) >= c.season_strength
        if self.season_n[b] == 0:
            self.season_mean[b] = value
        else:
            d = value - self.season_mean[b]
            self.season_dev[b] += c.season_alpha * (abs(d) - self.season_dev[b])
            self.season_mean[b] += c.season_alpha * d
        self.season_n[b] += 1

    def state(self, with_config: bool = True) -> dict[str, Any]:
        """The detector's full state as plain JSON types; `from_state` restores it exactly.
        Without its config, `from_state` must be given the config (a store of thousands of
        detectors with one config saves it once)."""
        out: dict[str, Any] = {
            "version": STATE_VERSION,
            "n": self.n,
            "prev": self.prev,
            "values": list(self.values.items),
            "changes": list(self.changes.items),
            "scales": [scale.to_list() for scale in self.scales],
            "season": {
                "first_ts": self.first_ts,
                "mean": list(self.season_mean),
                "dev": list(self.season_dev),
                "n": list(self.season_n),
                "residual_dev": self.residual_dev,
                "total_dev": self.total_dev,
            },
            "step": self.step,
            "last_ts": self.last_ts,
            "prev_recurring": self.prev_recurring,
        }
        if self.lowest is not None:  # (never with the rule off: such a state is as before the rule)
            out["range"] = [self.lowest, self.highest]
        if with_config:
            out["config"] = _config_state(self.config)
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any], config: DetectorConfig | None = None) -> StreamingDetector:
        """Rebuild a detector from `state()` output (e.g. after a JSON round trip); `config` is
        the one it was saved with when the state does not hold it."""
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(f"unsupported detector state version {version!r}")
        if config is None:
            config = DetectorConfig(**state["config"])
        det = cls(config)
        det.n = int(state["n"])
        det.prev = None if state["prev"] is None else float(state["prev"])
        det.values = RollingWindow(config.window, [float(x) for x in state["values"]])
        det.changes = RollingWindow(config.window, [float(x) for x in state["changes"]])
        scales = state.get("scales")
        if not isinstance(scales, list) or len(scales) != len(det.scales):
            raise ValueError("detector state does not match its likelihood scales")
        for scale, saved in zip(det.scales, scales, strict=True):
            scale.load(saved)
        season = state["season"]
        if len(season["mean"]) != config.season_buckets:
            raise ValueError("detector state does not match its season_buckets")
        det.first_ts = None if season["first_ts"] is None else float(season["first_ts"])
        det.season_mean = [float(x) for x in season["mean"]]
        det.season_dev = [float(x) for x in season["dev"]]
        det.season_n = [int(x) for x in season["n"]]
        det.residual_dev = float(season["residual_dev"])
        det.total_dev = float(season["total_dev"])
        det.step = float(state["step"])
        det.last_ts = None if state["last_ts"] is None else float(state["last_ts"])
        det.prev_recurring = bool(state["prev_recurring"])
        # (a state saved before the new-extreme rule has no range: it starts from the next value)
        lo, hi = state.get("range") or (None, None)
        det.lowest = None if lo is None else float(lo)
        det.highest = None if hi is None else float(hi)
        return det


@lru_cache(maxsize=16)
def _config_state(config: DetectorConfig) -> dict[str, Any]:
    """One dict per configuration, shared by every detector's state (read, never changed): a
    baseline store saves thousands of detectors with the same settings."""
    return asdict(config)
