"""The corpus held with a project's cases scores exactly as the straightforward `most_similar` does
over the same candidates: same cases, same order, same exact and text scores to the bit."""

from __future__ import annotations

from datetime import UTC, datetime

from vigil.learning.advice import advise
from vigil.learning.corpus import Corpus
from vigil.learning.features import Features, from_incident
from vigil.learning.similarity import most_similar
from vigil.learning.store import MAX_CASES, Case

WORDS = ["checkout", "payment", "timeout", "database", "connection", "refused", "pool", "exhausted", "latency", "disk", "full", "memory", "oom"]
SERVICES = ["checkout", "payments", "search", "auth"]


def features(n: int) -> Features:
    """The n-th of many problems: some repeated whole, some sharing only words or only labels,
    some with no words or no labels at all."""
    if n % 17 == 0:
        return Features()
    if n % 11 == 0:
        return Features(exact=frozenset({f"service:{SERVICES[n % 4]}"}))
    words = [WORDS[(n * k) % len(WORDS)] for k in range(1, 2 + n % 9)]
    words += [WORDS[n % len(WORDS)]] * (n % 3)
    if n % 13 == 0:
        return Features(tokens=tuple(words))
    labels = {"alertname": f"Alert{n % 23}", "severity": ["page", "warning"][n % 2]}
    incident = {
        "title": " ".join(words),
        "services": [SERVICES[n % 4], SERVICES[(n // 4) % 4]][: 1 + n % 2],
        "labels": labels,
    }
    return from_incident(incident)


def case(n: int) -> Case:
    return Case(f"wf-{n}", f"inc-{n}", datetime(2026, 1, 1, tzinfo=UTC), features(n), None, "")


def as_tuples(scored: list) -> list[tuple[str, float, float, float]]:
    return [(s.item.workflow_id, s.exact, s.text, s.similarity) for s in scored]


def test_the_corpus_scores_as_the_straightforward_comparison_over_varied_cases() -> None:
    cases = [case(n) for n in range(300)]
    corpus: Corpus[Case] = Corpus()
    for c in cases:
        corpus.add(c.workflow_id, c, c.features)
    compared = 0
    for q in range(0, 400, 7):
        query = features(q)
        for limit in (5, 1000):
            expected = most_similar(query, [(c, c.features) for c in cases], limit=limit)
            assert as_tuples(corpus.most_similar(query, limit=limit)) == as_tuples(expected)
            compared += len(expected)
        left = f"wf-{q % 300}"
        expected = most_similar(query, [(c, c.features) for c in cases if c.workflow_id != left], limit=1000)
        assert as_tuples(corpus.most_similar(query, limit=1000, leave_out=left)) == as_tuples(expected)
    assert compared > 1000  # most queries found similar cases, ties among them included


def test_cases_added_again_removed_and_trimmed_are_scored_as_the_cases_left() -> None:
    corpus: Corpus[Case] = Corpus()
    for n in range(120):
        corpus.add(f"wf-{n}", case(n), features(n))
    for n in range(0, 120, 3):
        corpus.add(f"wf-{n}", case(n + 1000), features(n + 1000))  # rewritten: moves to the end
    for n in range(1, 120, 5):
        corpus.remove(f"wf-{n}")
    corpus.trim(60)
    left = corpus.items()
    assert len(left) == 60
    for q in range(0, 200, 9):
        query = features(q)
        expected = most_similar(query, [(c, c.features) for c in left], limit=1000)
        assert as_tuples(corpus.most_similar(query, limit=1000)) == as_tuples(expected)
    corpus.trim(0)
    assert not len(corpus) and not corpus.most_similar(features(1))


def test_a_full_history_of_cases_is_scored_as_the_straightforward_comparison() -> None:
    cases = [case(n) for n in range(MAX_CASES)]
    for q in (1, 2, 26, 39, 77, 500):
        query = features(q)
        expected = most_similar(query, [(c, c.features) for c in cases], limit=5)
        assert expected
        assert as_tuples(advise(query, cases).similar) == as_tuples(expected)
