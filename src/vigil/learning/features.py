"""What a problem looks like to the learning: its exact features (templates, signal kinds, services,
alert labels, error types) and the words of its text, from an incident or from a batch's evidence.

Features are strings with their kind as a prefix (`service:checkout`, `label:alertname=X`), so
two problems are compared by plain set operations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vigil.agents.builtin.models import Evidence

KINDS = ("template", "signal", "service", "label", "error")
VOLATILE_LABELS = frozenset(
    {"instance", "pod", "pod_name", "container_id", "uid", "node", "hostname"}
    | {"tier", "runbook_id", "escalate_threshold", "agent_action"}
)
"""Labels that change from one firing of the same problem to the next (or steer Vigil rather
than describe the problem): not features, or every firing would look like new evidence."""
ERROR_ATTRIBUTES = ("exception.type", "error.type")
MAX_FEATURES = 200
MAX_TOKENS = 400
_TOKEN = re.compile(r"[a-z][a-z0-9_]{2,39}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "was",
        "were",
        "are",
        "not",
        "has",
        "have",
        "had",
        "but",
        "into",
        "after",
        "before",
        "over",
        "when",
        "while",
        "then",
        "than",
        "its",
        "via",
        "per",
        "http",
        "https",
        "www",
        "com",
    ]
)


@dataclass(frozen=True, slots=True)
class Features:
    exact: frozenset[str] = frozenset()
    tokens: tuple[str, ...] = ()

    def of_kind(self, kind: str) -> frozenset[str]:
        return frozenset(f for f in self.exact if f.startswith(kind + ":"))

    def to_json(self) -> dict[str, Any]:
        return {"exact": sorted(self.exact), "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Features:
        return cls(exact=frozenset(data.get("exact") or ()), tokens=tuple(data.get("tokens") or ()))


def tokens(text: str) -> tuple[str, ...]:
    """Lower-case words of a text, numbers and ids left out (they differ between firings)."""
    found = [t for t in _TOKEN.findall(text.lower()) if t not in _STOP and not _looks_like_id(t)]
    return tuple(found[:MAX_TOKENS])


def _looks_like_id(token: str) -> bool:
    digits = sum(c.isdigit() for c in token)
    return digits >= 3 or (len(token) >= 16 and digits > 0)


def _exact(pairs: Iterable[tuple[str, str]]) -> frozenset[str]:
    return frozenset(sorted({f"{kind}:{value}" for kind, value in pairs if value})[:MAX_FEATURES])


def from_incident(incident: dict[str, Any]) -> Features:
    """An incident's features: an alert's labels and services, or the detector's signals (their
    kinds, services, templates and error types), and the text people and logs gave it."""
    pairs: list[tuple[str, str]] = [("service", str(s)) for s in incident.get("services") or []]
    labels: dict[str, Any] = incident.get("labels") or {}
    pairs += [("label", f"{k}={v}") for k, v in labels.items() if k not in VOLATILE_LABELS]
    text = [str(incident.get("title") or "")]
    alert = incident.get("alert") or {}
    text += [str(v) for v in (alert.get("annotations") or {}).values()]
    for signal in incident.get("signals") or []:
        evidence = signal.get("evidence") or {}
        pairs.append(("signal", str(signal.get("kind") or "")))
        pairs.append(("service", str(signal.get("service") or "")))
        pairs.append(("template", str(signal.get("template_id") or evidence.get("template_id") or "")))
        pairs.append(("error", str(signal.get("error_type") or "")))
        text += [str(signal.get("title") or ""), str(evidence.get("template") or "")]
    return Features(exact=_exact(pairs), tokens=tokens(" ".join(text)))


def from_evidence(evidence: Evidence) -> Features:
    """A batch's features, for the LLM engine: its templates, services and error types."""
    pairs: list[tuple[str, str]] = []
    text: list[str] = []
    for item in evidence.items:
        pairs += [("template", item.template_id), ("service", item.service)]
        pairs += [("error", item.attributes[a]) for a in ERROR_ATTRIBUTES if a in item.attributes]
        text.append(item.template)
    return Features(exact=_exact(pairs), tokens=tokens(" ".join(text)))
