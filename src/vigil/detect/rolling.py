"""The two building blocks of the streaming detector (`vigil.detect.anomaly`): a rolling window
kept sorted for ranks and robust scales, and an anomaly-likelihood stage."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque

__all__ = ["Likelihood", "RollingWindow"]


class RollingWindow:
    """The last `size` values, also kept sorted for ranks and quantiles."""

    __slots__ = ("items", "size", "sorted")

    def __init__(self, size: int, items: list[float] | None = None) -> None:
        self.size = size
        self.items: deque[float] = deque(items or [])
        self.sorted: list[float] = sorted(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, x: float) -> None:
        items, ordered = self.items, self.sorted
        items.append(x)
        insort(ordered, x)
        if len(items) > self.size:
            del ordered[bisect_left(ordered, items.popleft())]

    def quantile(self, q: float) -> float:
        s = self.sorted
        pos = q * (len(s) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    def _spread(self) -> float:
        """A robust scale: IQR, else a wider quantile range, else the range, else a tiny floor."""
        s = self.sorted
        spread = (self.quantile(0.75) - self.quantile(0.25)) / 1.349
        if spread <= 0:
            spread = (self.quantile(0.95) - self.quantile(0.05)) / 3.29
        if spread <= 0:
            spread = (s[-1] - s[0]) / 6.0
        if spread <= 0:
            spread = abs(s[0]) * 1e-3 + 1e-9
        return spread

    def robust_z(self, x: float) -> float:
        return abs(x - self.quantile(0.5)) / self._spread()

    def rank_surprise(self, x: float) -> float:
        """-log of the share of the window at least as extreme as x, plus log1p of any overshoot."""
        s = self.sorted
        n = len(s)
        below = bisect_right(s, x)
        above = n - bisect_left(s, x)
        out = -math.log((min(below, above) + 1) / (n + 1))
        if s[0] <= x <= s[-1]:
            return out
        iqr = self.quantile(0.75) - self.quantile(0.25)
        scale = iqr or (s[-1] - s[0]) or (abs(s[0]) * 1e-3 + 1e-9)
        if x > s[-1]:
            return out + math.log1p((x - s[-1]) / scale)
        return out + math.log1p((s[0] - x) / scale)


class Likelihood:
    """Recent mean of a surprise, as a z-value against that mean's long-run distribution."""

    __slots__ = ("alpha", "mean", "min_n", "n", "recent", "short", "var")

    def __init__(self, short: int, alpha: float, min_n: int) -> None:
        self.short = short
        self.recent: list[float] = []  # a list, not a deque: a few floats, thousands of detectors
        self.alpha = alpha
        self.min_n = min_n
        self.mean = 0.0
        self.var = 0.0
        self.n = 0

    def update(self, surprise: float) -> float:
        recent = self.recent
        recent.append(surprise)
        if len(recent) > self.short:
            del recent[0]
        m = surprise if self.short == 1 else sum(recent) / len(recent)
        z = 0.0
        n = self.n
        if n >= self.min_n and n >= 2:
            z = (m - self.mean) / (math.sqrt(self.var) + 1e-6)
        self.n = n = n + 1
        a = 1.0 / n if n * self.alpha < 1.0 else self.alpha
        d = m - self.mean
        self.mean += a * d
        self.var = (1.0 - a) * (self.var + a * d * d)
        return z

    def to_list(self) -> list[float]:
        """[mean, var, n, recent...]: compact, as thousands of these are saved together."""
        return [self.mean, self.var, self.n, *self.recent]

    def load(self, data: list[float]) -> None:
        self.mean = float(data[0])
        self.var = float(data[1])
        self.n = int(data[2])
        self.recent = [float(x) for x in data[3:]][-self.short :]
