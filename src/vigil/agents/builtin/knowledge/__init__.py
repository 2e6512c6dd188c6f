"""The `rules` engine's knowledge base: common failure patterns as data, one module per family of
failures, each pattern worded as many stacks print it (Java, Python, Go, Node, proxies, databases,
systemd, Kubernetes).

A pattern matches a problem when one of its `phrases` occurs in the problem's template, samples or
attributes (ignoring case), or one of its `signals` (regular expressions, also case-insensitive)
does. Phrases are cheap substring checks; signals are kept for what needs word boundaries or
wildcards. Templates have their variables masked as `<*>` (numbers, ids, hosts, "x509" and "429"
included), so every pattern also carries wording that survives masking; numeric signals such as
status codes match in samples only. Signals are bounded (`.{0,N}`, no nested repetition) because
they run on untrusted log text.
"""

from __future__ import annotations

from vigil.agents.builtin.knowledge import (
    auth,
    code,
    config,
    containers,
    deploys,
    memory,
    network,
    pools,
    queries,
    ratelimit,
    storage,
    tls,
)
from vigil.agents.builtin.knowledge.pattern import FailurePattern, anchor

__all__ = ["KNOWLEDGE_BASE", "FailurePattern", "anchor", "by_error_type"]

KNOWLEDGE_BASE: tuple[FailurePattern, ...] = (
    *tls.PATTERNS,
    *memory.PATTERNS,
    *containers.PATTERNS,
    *deploys.PATTERNS,
    *pools.PATTERNS,
    *queries.PATTERNS,
    *storage.PATTERNS,
    *auth.PATTERNS,
    *network.PATTERNS,
    *ratelimit.PATTERNS,
    *config.PATTERNS,
    *code.PATTERNS,
)


def by_error_type() -> dict[str, FailurePattern]:
    return {pattern.error_type: pattern for pattern in KNOWLEDGE_BASE}
