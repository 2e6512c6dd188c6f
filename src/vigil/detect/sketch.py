"""A mergeable quantile sketch with relative-error guarantees (DDSketch, Masson et al., VLDB 2019).

A positive value x goes to bucket k = ceil(log_gamma(x)) with gamma = (1 + a) / (1 - a); the bucket's
representative 2 * gamma^k / (gamma + 1) is within a relative error `a` of every value in it, so any
quantile is answered within `a` of the true value at that rank. Two sketches with the same `a` merge
by adding bucket counts, which makes per-endpoint, per-window sketches combinable afterwards.

Buckets live in one dense array of counts from the lowest key, so a window's latencies (usually two or
three orders of magnitude, a few hundred buckets) cost a few kB. When the key range would exceed
`max_buckets`, the lowest buckets are collapsed into one: the low quantiles lose accuracy first, the
tail that latency analysis cares about keeps it.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DDSketch", "SketchState"]

_ZERO = 1e-9  # values at or below this count as zero: no log bucket for them


class SketchState(BaseModel):
    """The serialized sketch: `offset` is the key of `counts[0]`."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(gt=0.0, lt=1.0)
    max_buckets: int = Field(ge=16)
    zero: int = Field(ge=0)
    offset: int
    counts: list[int]
    sum: float
    min: float
    max: float


class DDSketch:
    """Quantiles within `alpha` relative error; mergeable; bounded to `max_buckets` buckets."""

    __slots__ = (
        "_counts",
        "_gamma_ln",
        "_offset",
        "_total",
        "alpha",
        "max",
        "max_buckets",
        "min",
        "sum",
        "zero",
    )

    def __init__(self, alpha: float = 0.01, max_buckets: int = 2048) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        if max_buckets < 16:
            raise ValueError("max_buckets must be >= 16")
        self.alpha = alpha
        self.max_buckets = max_buckets
        self._gamma_ln = math.log((1.0 + alpha) / (1.0 - alpha))
        self._counts: array[int] = array("q")
        self._offset = 0
        self._total = 0
        self.zero = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @property
    def count(self) -> int:
        return self._total

    def __len__(self) -> int:
        return self._total

    def _key(self, x: float) -> int:
        return math.ceil(math.log(x) / self._gamma_ln)

    def _value(self, key: int) -> float:
        return 2.0 * math.exp(key * self._gamma_ln) / (1.0 + math.exp(self._gamma_ln))

    def add(self, x: float, n: int = 1) -> None:
        """Add `n` occurrences of `x` (negative values are clamped to zero)."""
        if n <= 0:
            return
        if math.isnan(x):
            raise ValueError("cannot add NaN to a sketch")
        x = max(0.0, x)
        self._total += n
        self.sum += x * n
        self.min = min(self.min, x)
        self.max = max(self.max, x)
        if x <= _ZERO:
            self.zero += n
            return
        self._bump(self._key(x), n)

    def _bump(self, key: int, n: int) -> None:
        counts = self._counts
        if not counts:
            self._offset = key
            counts.append(n)
            return
        if key < self._offset:
            low = max(key, self._offset + len(counts) - self.max_buckets)
            if low < self._offset:
                counts[0:0] = array("q", bytes(8 * (self._offset - low)))
                self._offset = low
            counts[max(key, low) - self._offset] += n
            return
        index = key - self._offset
        if index >= len(counts):
            counts.extend(array("q", bytes(8 * (index + 1 - len(counts)))))
            self._collapse()
            index = key - self._offset
        counts[index] += n

    def _collapse(self) -> None:
        excess = len(self._counts) - self.max_buckets
        if excess > 0:
            folded = sum(self._counts[: excess + 1])
            del self._counts[:excess]
            self._counts[0] = folded
            self._offset += excess

    def merge(self, other: DDSketch) -> None:
        """Add every value of `other` to this sketch (both must use the same alpha)."""
        if other.alpha != self.alpha:
            raise ValueError("cannot merge sketches with different alpha")
        if other._total == 0:
            return
        for i, c in enumerate(other._counts):
            if c:
                self._bump(other._offset + i, c)
        self.zero += other.zero
        self._total += other._total
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The value at quantile q in [0, 1] (lower rank), or None for an empty sketch."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be in [0, 1]")
        if self._total == 0:
            return None
        if q == 1.0:
            return self.max
        rank = q * (self._total - 1)
        if rank < self.zero:
            return max(0.0, self.min)
        seen = self.zero
        value = self.max
        for i, c in enumerate(self._counts):
            seen += c
            if seen > rank:
                value = self._value(self._offset + i)
                break
        # the exact extremes are known, so estimates never leave [min, max]
        return min(self.max, max(self.min, value))

    def to_dict(self) -> dict[str, Any]:
        counts = list(self._counts)
        start = 0
        while start < len(counts) and counts[start] == 0:
            start += 1
        end = len(counts)
        while end > start and counts[end - 1] == 0:
            end -= 1
        empty = self._total == 0
        return SketchState(
            alpha=self.alpha,
            max_buckets=self.max_buckets,
            zero=self.zero,
            offset=self._offset + start,
            counts=counts[start:end],
            sum=self.sum,
            min=0.0 if empty else self.min,
            max=0.0 if empty else self.max,
        ).model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DDSketch:
        state = SketchState.model_validate(data)
        if any(c < 0 for c in state.counts) or len(state.counts) > state.max_buckets:
            raise ValueError("invalid sketch counts")
        sketch = cls(state.alpha, state.max_buckets)
        sketch._counts = array("q", state.counts)
        sketch._offset = state.offset
        sketch.zero = state.zero
        sketch._total = state.zero + sum(state.counts)
        sketch.sum = state.sum
        if sketch._total:
            sketch.min, sketch.max = state.min, state.max
        return sketch
