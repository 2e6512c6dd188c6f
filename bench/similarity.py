"""The learning's similarity scan: µs to advise one new alert against a project's past cases, as
the rules engine does for every alert's workflow (`advise` against the cases held in the process),
at the bench's history (~145 cases) and at a full one (`MAX_CASES`). Cases are alerts like the
workflow bench's (every one sharing words and labels, the worst case for the index) and a mix of
several services' problems. Prints one line per history size and kind; not part of `run.py`."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from vigil.learning.advice import advise
from vigil.learning.features import from_incident
from vigil.learning.store import MAX_CASES, Case

WORDS = [
    "checkout",
    "payment",
    "timeout",
    "database",
    "connection",
    "refused",
    "pool",
    "exhausted",
    "latency",
    "disk",
    "full",
    "oom",
]


def alike(n: int) -> dict[str, object]:
    labels = {"alertname": f"Act{n}", "bench": "act", "service": "checkout"}
    return {
        "title": f"Act{n}",
        "services": ["checkout"],
        "labels": labels,
        "alert": {"annotations": {"summary": "bench"}},
    }


def mixed(n: int) -> dict[str, object]:
    service = f"svc{n % 40}"
    words = " ".join(WORDS[(n * k) % len(WORDS)] for k in range(1, 6))
    labels = {"alertname": f"Alert{n % 60}", "service": service, "severity": "page"}
    return {"title": f"{service} {words}", "services": [service], "labels": labels}


def per_alert_us(kind: object, history: int, repeat: int = 200) -> float:
    cases = [
        Case(f"wf-{n}", f"inc-{n}", datetime.now(UTC), from_incident(kind(n)), "act", "")  # type: ignore[operator]
        for n in range(history)
    ]
    from vigil.learning import advice as module

    held = module.corpus_of(cases) if hasattr(module, "corpus_of") else cases
    queries = [from_incident(kind(history + n)) for n in range(repeat)]  # type: ignore[operator]
    began = time.process_time()
    for query in queries:
        advise(query, held)
    return 1e6 * (time.process_time() - began) / repeat


if __name__ == "__main__":
    for history in (145, MAX_CASES):
        for name, kind in (("alike", alike), ("mixed", mixed)):
            print(f"{history:5d} cases, {name}: {per_alert_us(kind, history):8.1f} µs per alert")
