"""HTTP calls of the external tools: bounded by the tools' timeout, failures as `ToolFailed`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from vigil.investigate.tools.base import ToolContext, ToolFailed

MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""An answer larger than this is refused rather than parsed."""


async def call_json(
    ctx: ToolContext,
    what: str,
    method: str,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
) -> Any:
    try:
        async with ctx.http.stream(
            method,
            url,
            params=params,
            content=orjson.dumps(json) if json is not None else None,
            headers={**({"content-type": "application/json"} if json is not None else {}), **(headers or {})},
            auth=auth,
            timeout=ctx.settings.timeout_s,
        ) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise ToolFailed(f"{what}: answer over {MAX_ANSWER_BYTES} bytes; narrow the query")
    except httpx.HTTPError as exc:
        raise ToolFailed(f"{what}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        raise ToolFailed(f"{what}: HTTP {response.status_code}: {_reason(bytes(body))}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ToolFailed(f"{what}: the answer is not JSON") from None


def _reason(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode(errors="replace").strip()
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict):
            return str(error.get("reason") or error.get("type") or error)[:300]
        return str(error or parsed.get("message") or parsed)[:300]
    return str(parsed)[:300]


def time_range(
    since: datetime | None, until: datetime | None, default_s: float = 3600
) -> tuple[datetime, datetime]:
    end = until or datetime.now(UTC)
    start = since or end - timedelta(seconds=default_s)
    if end <= start:
        raise ToolFailed("the time range ends before it starts")
    return start, end
