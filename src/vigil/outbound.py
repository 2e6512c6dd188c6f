"""The one outbound HTTP call that agents and sinks make, so failures classify the same everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from vigil.errors import DeliveryError
from vigil.outbound_policy import OutboundRefused

ERROR_BODY_BYTES = 256
"""How much of a failed answer goes into the error: enough for Slack's `invalid_blocks`, never a page
(and, scrubbed by `DeliveryError`, never a credential the receiver echoed)."""

_DRAIN_BYTES = 64 * 1024
"""A short success body is read to the end so the connection can be reused; a long one is abandoned."""

RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""Besides every 5xx: the receiver asked us to come back later."""


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str] | httpx.Headers,
    timeout_s: float,
    target: str,
) -> None:
    """POST once; return on 2xx, raise a classified `DeliveryError` otherwise.

    `target` names the destination in errors; callers pass a label, never a URL that holds a secret.
    `timeout_s` bounds the whole exchange, so a receiver that trickles its answer cannot hold a worker.
    """
    try:
        async with (
            asyncio.timeout(timeout_s),
            client.stream("POST", url, content=content, headers=headers, timeout=timeout_s) as response,
        ):
            if response.is_success:
                await _read_head(response, _DRAIN_BYTES)
                return
            status = response.status_code
            snippet = (await _read_head(response, ERROR_BODY_BYTES)).decode("utf-8", "replace").strip()
    except OutboundRefused as exc:
        raise DeliveryError(f"{target}: refused by the outbound policy: {exc}", retryable=False) from None
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise DeliveryError(f"{target}: no answer within {timeout_s:g}s", retryable=True) from exc
    except httpx.UnsupportedProtocol as exc:
        raise DeliveryError(f"{target}: {exc}", retryable=False) from exc
    except httpx.TransportError as exc:
        raise DeliveryError(f"{target}: {type(exc).__name__}: {exc}", retryable=True) from exc
    detail = f": {snippet}" if snippet else ""
    raise DeliveryError(
        f"{target}: HTTP {status}{detail}", retryable=is_retryable_status(status), status=status
    )


async def _read_head(response: httpx.Response, limit: int) -> bytes:
    head = bytearray()
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= limit:
            break
    return bytes(head[:limit])
