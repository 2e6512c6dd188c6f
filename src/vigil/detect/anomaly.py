"""Streaming anomaly detector for one numeric series.

Each `update(timestamp, value)` returns a score in [0, 1] computed only from the points seen so far
and the new one. Higher means more anomalous. v1 experimental.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["DetectorConfig", "StreamingDetector"]

_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class DetectorConfig:
    window: int = 1000
    warmup: int = 150
    short: int = 5
    long_alpha: float = 0.001
    seasonal: bool = True
    season_buckets: int = 96
    season_alpha: float = 0.2
    season_min_days: int = 3
    suppress: int = 100
    suppress_factor: float = 0.5
    use_diff: bool = True
    z_half: float = 4.0
    veto_margin: float = 2.0
    value_mode: str = "robust"
    feature_min_n: int = 0
    combine: str = "max"
    reset_short: int = 0
    reset_z: float = 6.0
    alert_level: float = 0.6


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / _SQRT2)


class _Feature:
    """Likelihood stage: recent mean of a surprise vs its long-run distribution."""

    def __init__(self, short: int, alpha: float, min_n: int = 0) -> None:
        self.min_n = min_n
        self.recent: deque[float] = deque(maxlen=short)
        self.alpha = alpha
        self.mean = 0.0
        self.var = 0.0
        self.n = 0

    def score(self, s: float) -> float:
        self.recent.append(s)
        m = sum(self.recent) / len(self.recent)
        if self.n < max(2, self.min_n):
            out = 0.0
        else:
            sd = math.sqrt(self.var) + 1e-6
            out = (m - self.mean) / sd
        # update long-run stats with the short mean
        self.n += 1
        a = max(self.alpha, 1.0 / self.n)
        d = m - self.mean
        self.mean += a * d
        self.var = (1 - a) * (self.var + a * d * d)
        return out


class _Window:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[float] = deque()
        self.sorted: list[float] = []

    def add(self, x: float) -> None:
        self.items.append(x)
        insort(self.sorted, x)
        if len(self.items) > self.size:
            old = self.items.popleft()
            del self.sorted[bisect_left(self.sorted, old)]

    def __len__(self) -> int:
        return len(self.items)

    def quantile(self, q: float) -> float:
        s = self.sorted
        pos = q * (len(s) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    def robust_z(self, x: float) -> float:
        med = self.quantile(0.5)
        spread = (self.quantile(0.75) - self.quantile(0.25)) / 1.349
        if spread <= 0:
            spread = (self.quantile(0.95) - self.quantile(0.05)) / 3.29
        if spread <= 0:
            spread = (self.sorted[-1] - self.sorted[0]) / 6
        if spread <= 0:
            spread = abs(med) * 1e-3 + 1e-9
        return abs(x - med) / spread

    def rank_surprise(self, x: float) -> float:
        s = self.sorted
        n = len(s)
        lo = bisect_right(s, x)
        hi = n - bisect_left(s, x)
        out = -math.log((min(lo, hi) + 1) / (n + 1))
        spread = (self.quantile(0.75) - self.quantile(0.25)) or (s[-1] - s[0]) or (abs(s[0]) * 1e-3 + 1e-9)
        if x > s[-1]:
            out += math.log1p((x - s[-1]) / spread)
        elif x < s[0]:
            out += math.log1p((s[0] - x) / spread)
        return out

    def tail(self, x: float) -> float:
        n = len(self.sorted)
        lo = bisect_right(self.sorted, x)
        hi = n - bisect_left(self.sorted, x)
        return min(lo, hi) / n


class StreamingDetector:
    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        c = self.config
        self.n = 0
        self.values = _Window(c.window)
        self.diffs = _Window(c.window)
        self.prev: float | None = None
        self.f_value = _Feature(c.short, c.long_alpha, c.feature_min_n)
        self.f_diff = _Feature(c.short, c.long_alpha, c.feature_min_n)
        self.f_season = _Feature(c.short, c.long_alpha, c.feature_min_n)
        self.first_ts: float | None = None
        self.s_mean = [0.0] * c.season_buckets
        self.s_dev = [0.0] * c.season_buckets
        self.s_n = [0] * c.season_buckets
        self.recent_vals: deque[float] = deque(maxlen=c.reset_short or 1)
        self.last_alert = -(10**9)
        self.last_alert_score = 0.0

    def update(self, timestamp: float, value: float) -> float:
        c = self.config
        self.n += 1
        if self.first_ts is None:
            self.first_ts = timestamp
        scores: list[float] = []
        if len(self.values) >= 10:
            if c.value_mode == "robust":
                z = self.values.robust_z(value)
                scores.append(self.f_value.score(math.log1p(z)))
            else:
                scores.append(self.f_value.score(self.values.rank_surprise(value)))
            if c.use_diff and self.prev is not None and len(self.diffs) >= 10:
                d = abs(value - self.prev)
                zd = self.diffs.robust_z(d)
                scores.append(self.f_diff.score(math.log1p(zd)))
        # seasonal
        b = int((timestamp % 86400.0) / 86400.0 * c.season_buckets)
        if c.seasonal:
            days = (timestamp - self.first_ts) / 86400.0
            if self.s_n[b] >= c.season_min_days and days >= c.season_min_days:
                spread = self.s_dev[b] * 1.2533 + 1e-9
                zs = abs(value - self.s_mean[b]) / spread
                scores.append(self.f_season.score(math.log1p(zs)))
            if self.s_n[b] == 0:
                self.s_mean[b] = value
            else:
                dv = value - self.s_mean[b]
                self.s_dev[b] += c.season_alpha * (abs(dv) - self.s_dev[b])
                self.s_mean[b] += c.season_alpha * dv
            self.s_n[b] += 1
        if self.prev is not None:
            self.diffs.add(abs(value - self.prev))
        self.values.add(value)
        self.prev = value
        if c.reset_short:
            self.recent_vals.append(value)
            if len(self.recent_vals) == c.reset_short and len(self.values) >= 4 * c.reset_short:
                rec = sorted(self.recent_vals)
                rmed = rec[len(rec) // 2]
                z = self.values.robust_z(rmed)
                rspread = rec[int(0.75 * (len(rec) - 1))] - rec[int(0.25 * (len(rec) - 1))]
                if z > c.reset_z and abs(rmed - self.values.quantile(0.5)) > 3 * rspread:
                    self.values = _Window(c.window)
                    for v in self.recent_vals:
                        self.values.add(v)
                    self.diffs = _Window(c.window)
                    rv = list(self.recent_vals)
                    for a, b2 in zip(rv, rv[1:]):
                        self.diffs.add(abs(b2 - a))
        if c.combine == "max" or len(scores) < 3:
            z = max(scores) if scores else 0.0
        elif c.combine == "season_veto":
            z = max(scores[2], min(max(scores[0], scores[1]), scores[2] + c.veto_margin))
        else:
            z = max(scores)
        self.debug = scores
        score = z / (z + c.z_half) if z > 0 else 0.0
        if self.n <= c.warmup:
            score = 0.0
        # suppression: damp scores shortly after a higher alert
        if self.n - self.last_alert < c.suppress and score <= self.last_alert_score:
            out = score * c.suppress_factor
        else:
            out = score
        if score > c.alert_level and (
            self.n - self.last_alert >= c.suppress or score > self.last_alert_score
        ):
            self.last_alert = self.n
            self.last_alert_score = score
        return min(1.0, max(0.0, out))

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StreamingDetector:
        raise NotImplementedError


_ = (asdict, fields)
