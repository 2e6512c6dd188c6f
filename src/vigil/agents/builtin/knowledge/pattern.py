"""What a failure pattern of the `rules` engine's knowledge base is.

A pattern matches a problem when one of its `phrases` occurs in the problem's template, samples or
attributes (ignoring case), or one of its `signals` (regular expressions, also case-insensitive)
does. Phrases are cheap substring checks; signals are kept for what needs word boundaries or
wildcards. Templates have their variables masked as `<*>` (numbers, ids, hosts, "x509" and "429"
included), so every pattern also carries wording that survives masking; numeric signals such as
status codes match in samples only.

Signals are bounded (`.{0,N}`, no nested repetition) because they run on untrusted log text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vigil.agents.builtin.models import Severity

__all__ = ["FailurePattern", "anchor", "status_signals"]

_CAMEL_CASE = re.compile(r"(?=.*[a-z])(?:[A-Z][a-z0-9]*)+")
# A status code is only a signal next to words that make it one ("status 429", not "order 429").
# The leading \b keeps attributes such as `http.response.status_code=503` (this service's own
# answer, not a dependency's) out.
_STATUS_WORDS = (
    r"\bstatus(?: code)?",
    r"\bcode",
    r"\bHTTP(?:/[\d.]{1,3})?",
    r"\breturned",
    r"\bresponded with",
    r"\bresponse",
    r"\bgot",
    r"\breceived",
)


def status_signals(code: str) -> tuple[str, ...]:
    return tuple(rf"{word}[=:]? ?\"?{code}\b" for word in _STATUS_WORDS)


def anchor(signal: str) -> str:
    """The longest run of literal text (lower case) that every match of `signal` contains.

    Only the top level of the expression counts: groups, classes, escapes and optional characters
    end a run. A signal with a top-level `|` has no such run; write its branches as two signals.
    """
    runs: list[str] = []
    run, depth, i, literal_before = "", 0, 0, False
    while i < len(signal):
        char, i = signal[i], i + 1
        if char in "?*+{" and literal_before:
            end = signal.index("}", i) + 1 if char == "{" else i
            optional = char in "?*" or signal[i:end].startswith("0")
            runs.append(run[:-1] if optional else run)
            run, i, literal_before = "", end, False
            continue
        if char in "?*+{":  # quantifies a group, class or escape, which are no runs anyway
            i = signal.index("}", i) + 1 if char == "{" else i
            continue
        literal = ""
        if char == "\\":
            escaped, i = signal[i : i + 1], i + 1
            literal = escaped if escaped and not escaped.isalnum() else ""
        elif char == "[":
            i = signal.index("]", i + 1 if signal[i : i + 1] in ("]", "^") else i) + 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            raise ValueError(f"top-level alternation in signal {signal!r}")
        elif char not in ".^$|":
            literal = char
        literal_before = bool(literal) and depth == 0
        if literal_before:
            run += literal
        elif run:
            runs.append(run)
            run = ""
    runs.append(run)
    return max(runs, key=len).lower()


@dataclass(frozen=True, slots=True)
class FailurePattern:
    error_type: str
    """CamelCase class, the `error_type` of an analysis this pattern explains."""
    title: str
    """Phrase for summaries, read after a service name: "<service>: <title> (<n> records)"."""
    severity: Severity
    """Severity when it occurs at ordinary volume; the engine escalates with volume and breadth."""
    root_cause: str
    remediation: tuple[str, ...]
    notify: bool
    confidence: float
    """How often a match means what `root_cause` says."""
    specificity: float
    """How unambiguous the phrases and signals are; the most specific matching pattern classifies a
    problem."""
    phrases: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    symptom: bool = False
    """A consequence that many causes produce (timeouts, resets, 5xx): it never decides alone."""
    quiet: bool = False
    """Its evidence is normally logged below WARN (slow query logs, ORM debug output, restart
    notices). Other patterns matched only in DEBUG or INFO records are mentions, not failures."""
    explains: tuple[str, ...] = ()
    """Error types this cause commonly produces downstream: their findings do not compete with it."""
    probes: tuple[tuple[str, re.Pattern[str] | None], ...] = field(init=False, repr=False, compare=False)
    """What the engine checks, in order: a lower-case text that must occur in the lower-cased
    haystack, and the signal's regex to confirm (None for a phrase, which is its own proof)."""

    def __post_init__(self) -> None:
        if not _CAMEL_CASE.fullmatch(self.error_type):
            raise ValueError(f"error_type must be CamelCase: {self.error_type!r}")
        if not (0.0 < self.confidence <= 1.0 and 0.0 < self.specificity <= 1.0):
            raise ValueError(f"{self.error_type}: confidence and specificity must be in (0, 1]")
        if not (self.phrases or self.signals) or not self.remediation:
            raise ValueError(f"{self.error_type}: needs phrases or signals, and remediation")
        probes: list[tuple[str, re.Pattern[str] | None]] = [(p.lower(), None) for p in self.phrases]
        for signal in self.signals:
            key = anchor(signal)
            if len(key) < 3:
                raise ValueError(f"{self.error_type}: signal {signal!r} needs a literal of 3+ characters")
            # ASCII case folding, so that a match implies the anchor in `str.lower()` text.
            probes.append((key, re.compile(signal, re.IGNORECASE | re.ASCII)))
        object.__setattr__(self, "probes", tuple(probes))
