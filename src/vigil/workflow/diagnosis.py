"""What failure families a detected incident shows, so that runbooks naming `error_types` match
it: the detector's query signals name theirs (an N+1, a slow query), and a new error template is
classified by the rules engine's knowledge base (symptoms such as timeouts name no cause)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vigil.agents.builtin.models import EvidenceItem
from vigil.agents.builtin.rules import RulesEngine

SIGNAL_CAUSES = {"n_plus_one": "NPlusOneQueries", "slow_query": "SlowQuery"}
_ENGINE = RulesEngine()


def error_types(incident: dict[str, Any]) -> list[str]:
    found: set[str] = set()
    for signal in incident.get("signals") or []:
        if signal.get("error_type"):
            found.add(str(signal["error_type"]))
        cause = SIGNAL_CAUSES.get(str(signal.get("kind")))
        if cause:
            found.add(cause)
        evidence = signal.get("evidence") if isinstance(signal.get("evidence"), dict) else {}
        template = evidence.get("template") or signal.get("template")
        if not template:
            continue
        now = datetime.now(UTC)
        item = EvidenceItem(
            template_id=str(evidence.get("template_id") or signal.get("fingerprint") or "template"),
            template=str(template)[:4096],
            service=str(signal.get("service") or "unknown"),
            count=1,
            first_seen=now,
            last_seen=now,
            severity_number=0,
        )
        match = _ENGINE.classify(item)
        if match is not None and not match.pattern.symptom:
            found.add(match.pattern.error_type)
    return sorted(found)
