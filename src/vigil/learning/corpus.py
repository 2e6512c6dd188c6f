"""The candidates of `similarity.most_similar`, prepared once for many queries: each document's words
counted, the document frequency of every word, and which documents hold each word and each exact
feature. A project's cases are compared with every new problem, so this is kept with them and
changed as cases come and go, never rebuilt per alert.

A query scores only the documents that share a word or an exact feature with it (the others' score
is 0, below `MIN_SIMILARITY`), and documents with the same words share one TF-IDF cosine. The
results are those of `most_similar` over the same candidates, to the bit: the same sums of the same
products in the same order (a skipped term only ever added 0.0)."""

from __future__ import annotations

import heapq
import math
import operator
from collections import Counter
from dataclasses import dataclass
from typing import Generic, TypeVar

from vigil.learning.features import Features
from vigil.learning.similarity import EXACT_WEIGHT, MIN_SIMILARITY, Scored

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Doc(Generic[T]):
    seq: int
    item: T
    exact: frozenset[str]
    tokens: tuple[str, ...]
    terms: tuple[str, ...]
    """Each word once, in the order of first use (as `Counter` keeps them), and its count."""
    counts: tuple[int, ...]
    words: frozenset[str]


class Corpus(Generic[T]):
    """Documents under unique keys, in the order added (a key added again moves to the end)."""

    def __init__(self) -> None:
        self._docs: dict[str, _Doc[T]] = {}
        self._by_seq: dict[int, _Doc[T]] = {}
        self._next = 0
        self._df: Counter[str] = Counter()
        self._by_word: dict[str, set[int]] = {}
        self._by_feature: dict[str, set[int]] = {}

    def __len__(self) -> int:
        return len(self._docs)

    def items(self) -> list[T]:
        return [doc.item for doc in self._docs.values()]

    def add(self, key: str, item: T, features: Features) -> None:
        self.remove(key)
        counts = Counter(features.tokens)
        terms, words = tuple(counts), frozenset(counts)
        doc = _Doc(self._next, item, features.exact, features.tokens, terms, tuple(counts.values()), words)
        self._next += 1
        self._docs[key] = self._by_seq[doc.seq] = doc
        self._df.update(doc.words)
        for word in doc.words:
            self._by_word.setdefault(word, set()).add(doc.seq)
        for feature in doc.exact:
            self._by_feature.setdefault(feature, set()).add(doc.seq)

    def remove(self, key: str) -> None:
        doc = self._docs.pop(key, None)
        if doc is None:
            return
        del self._by_seq[doc.seq]
        self._df.subtract(doc.words)
        for word in doc.words:
            _discard(self._by_word, word, doc.seq)
            if not self._df[word]:
                del self._df[word]
        for feature in doc.exact:
            _discard(self._by_feature, feature, doc.seq)

    def trim(self, keep: int) -> None:
        """Only the `keep` most recently added documents stay."""
        while len(self._docs) > keep:
            self.remove(next(iter(self._docs)))

    def most_similar(
        self, query: Features, *, limit: int = 5, leave_out: str | None = None
    ) -> list[Scored[T]]:
        """`most_similar(query, candidates, limit=limit)` with the candidates held here, the one
        under `leave_out` left out."""
        left = self._docs.get(leave_out) if leave_out is not None else None
        n = len(self._docs) - (left is not None)
        if not n:
            return []
        query_counts = Counter(query.tokens)
        weight = _Weights(n + 1, self._df, query_counts, left.words if left is not None else frozenset())
        query_vector = {word: count * weight[word] for word, count in query_counts.items()}
        query_norm = math.sqrt(sum(v * v for v in query_vector.values())) or 1.0
        query_vector = {word: v / query_norm for word, v in query_vector.items()}
        seqs: set[int] = set()
        for word in query_counts:
            seqs.update(self._by_word.get(word, ()))
        for feature in query.exact:
            seqs.update(self._by_feature.get(feature, ()))
        if left is not None:
            seqs.discard(left.seq)
        texts: dict[tuple[str, ...], float] = {}
        ranked: list[tuple[float, float, int]] = []
        for seq in sorted(seqs):
            doc = self._by_seq[seq]
            text = texts.get(doc.tokens)
            if text is None:
                text = texts[doc.tokens] = _cosine(query_vector, doc, weight) if query_vector else 0.0
            common = len(query.exact & doc.exact)
            union = len(query.exact) + len(doc.exact) - common
            exact = common / union if union else 0.0
            if _kept(exact, text):
                ranked.append((-exact, -text, seq))
        # the order of a stable sort by (-exact, -text): ties stay in the order added
        return [Scored(self._by_seq[seq].item, -e, -t) for e, t, seq in heapq.nsmallest(limit, ranked)]

    def holding(self, exact: frozenset[str], words: frozenset[str] = frozenset()) -> list[T]:
        """The documents with all these exact features and words, in the order added (none
        when asked for none)."""
        postings = [self._by_feature.get(f, set()) for f in exact] + [
            self._by_word.get(w, set()) for w in words
        ]
        if not postings:
            return []
        postings.sort(key=len)
        found = postings[0].intersection(*postings[1:])
        return [self._by_seq[seq].item for seq in sorted(found)]


def _kept(exact: float, text: float) -> bool:
    """`Scored(_, exact, text).similarity >= MIN_SIMILARITY`, rounding only near the bound."""
    unrounded = EXACT_WEIGHT * exact + (1 - EXACT_WEIGHT) * text
    if abs(unrounded - MIN_SIMILARITY) > 1e-4:
        return unrounded > MIN_SIMILARITY
    return round(unrounded, 4) >= MIN_SIMILARITY


class _Weights(dict[str, float]):
    """Each word's IDF for one query, as `similarity._vectors` takes it over the query and the
    candidates (`documents` of them), worked out once a word is asked for."""

    def __init__(
        self, documents: int, df: Counter[str], query: Counter[str], left_out: frozenset[str]
    ) -> None:
        super().__init__()
        self._documents, self._df, self._query, self._left_out = documents, df, query, left_out

    def __missing__(self, word: str) -> float:
        df = self._df[word] + (word in self._query) - (word in self._left_out)
        found = self[word] = math.log((1 + self._documents) / (1 + df)) + 1.0
        return found


def _cosine(query: dict[str, float], doc: _Doc[T], weight: _Weights) -> float:
    """As `similarity._cosine` sums them: over the shorter vector's terms in its order (the terms
    not shared only added 0.0)."""
    shared = doc.words.intersection(query)
    if not shared:
        return 0.0
    vector = list(map(operator.mul, doc.counts, map(weight.__getitem__, doc.terms)))
    norm = math.sqrt(sum(map(operator.mul, vector, vector))) or 1.0
    if len(shared) == 1:  # a sum of one product (and of zeros) is that product
        (word,) = shared
        dot: float = query[word] * (vector[doc.terms.index(word)] / norm)
    elif len(query) <= len(vector):
        ours = dict(zip(doc.terms, vector, strict=True))
        dot = sum(v * (ours[word] / norm) for word, v in query.items() if word in shared)
    else:
        pairs = zip(doc.terms, vector, strict=True)
        dot = sum(v / norm * query[word] for word, v in pairs if word in shared)
    return min(1.0, dot)


def _discard(postings: dict[str, set[int]], key: str, seq: int) -> None:
    held = postings.get(key)
    if held is not None:
        held.discard(seq)
        if not held:
            del postings[key]
