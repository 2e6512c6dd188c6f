"""How alike two problems are: the overlap of their exact features first (same templates, signals,
services, alert labels, error types), then the TF-IDF cosine of their words."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from vigil.learning.features import Features

T = TypeVar("T")
EXACT_WEIGHT = 0.7
"""Of a similarity, the share of the exact features' overlap; the rest is the text's."""
MIN_SIMILARITY = 0.2


@dataclass(frozen=True)
class Scored(Generic[T]):
    item: T
    exact: float
    text: float

    @property
    def similarity(self) -> float:
        return round(EXACT_WEIGHT * self.exact + (1 - EXACT_WEIGHT) * self.text, 4)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def _vectors(documents: Sequence[Sequence[str]]) -> list[dict[str, float]]:
    """TF-IDF vectors, the IDF taken over these documents (smoothed, so no weight is zero)."""
    frequency: Counter[str] = Counter()
    for document in documents:
        frequency.update(set(document))
    n = len(documents)
    idf = {term: math.log((1 + n) / (1 + df)) + 1.0 for term, df in frequency.items()}
    vectors = []
    for document in documents:
        counts = Counter(document)
        vector = {term: count * idf[term] for term, count in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        vectors.append({term: v / norm for term, v in vector.items()})
    return vectors


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return sum(v * large.get(term, 0.0) for term, v in small.items())


def most_similar(
    query: Features, candidates: Sequence[tuple[T, Features]], *, limit: int = 5
) -> list[Scored[T]]:
    """The candidates most like `query`, the most alike first: by exact overlap, then text;
    those below MIN_SIMILARITY are left out."""
    if not candidates:
        return []
    vectors = _vectors([query.tokens, *(features.tokens for _, features in candidates)])
    scored = [
        Scored(item, jaccard(query.exact, features.exact), min(1.0, _cosine(vectors[0], vector)))
        for (item, features), vector in zip(candidates, vectors[1:], strict=True)
    ]
    kept = [s for s in scored if s.similarity >= MIN_SIMILARITY]
    kept.sort(key=lambda s: (-s.exact, -s.text))
    return kept[:limit]
