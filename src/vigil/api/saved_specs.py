"""Pipelines' and sinks' specs as the API takes and shows them: checked against the outbound policy
when saved, shown with their secrets masked."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from vigil.api.schemas import STORED_INVALID
from vigil.errors import ValidationFailed
from vigil.masking import mask_url
from vigil.outbound_policy import OutboundPolicy, OutboundRefused


def public_spec(spec: Any) -> dict[str, Any]:
    """A spec as the API shows it: secrets masked (headers, signing secrets, credentials in URLs)."""
    dumped: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    agent = dumped.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("endpoint"), str):
        agent["endpoint"] = mask_url(agent["endpoint"])
    return dumped


def check_outbound(policy: OutboundPolicy, url: str, loc: list[str]) -> None:
    try:
        policy.check_url(url)
    except OutboundRefused as exc:
        where = ".".join(loc)
        message = f"{where}: refused by the outbound policy: {exc}"
        details = {"errors": [{"loc": ["body", *loc], "msg": str(exc), "type": "outbound_refused"}]}
        raise ValidationFailed(message, details=details) from None


def stored_spec(stored: Any, validate: Callable[[Any], Any]) -> tuple[dict[str, Any], str | None]:
    """A stored spec as the API shows it, and why it no longer validates when it does not (saved
    under older, looser rules): then shown as stored, its secrets masked all the same."""
    try:
        return public_spec(validate(stored)), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _masked_stored(stored), f"{STORED_INVALID} ({where}: {first['msg']})"


def _masked_stored(stored: Any) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(stored) if isinstance(stored, dict) else {}
    agent = spec.get("agent")
    for holder in (spec, agent if isinstance(agent, dict) else {}):
        for key in ("endpoint", "url"):
            if isinstance(holder.get(key), str):
                holder[key] = mask_url(holder[key])
        for key in ("secret", "webhook_url"):
            if holder.get(key) is not None:
                holder[key] = "**********"
        if isinstance(holder.get("headers"), dict) and holder is agent:
            holder["headers"] = {name: "**********" for name in holder["headers"]}
    return spec
