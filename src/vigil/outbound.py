"""The one outbound HTTP call that agents and sinks make, so failures classify the same everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
import httpx
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from vigil.errors import DeliveryError

ERROR_BODY_BYTES = 512
"""How much of a failed answer goes into the error: enough for Slack's `invalid_blocks`, never a page."""

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


class Outbound:
    """The HTTP client of batch deliveries: one aiohttp session (a keep-alive pool per host).

    Measured on the same load (bench/http_clients.py), it costs about a seventh of the CPU per
    POST of `httpx.AsyncClient`, which made up a third of `vigil up`'s CPU at 2,000 records/s.
    Redirects are not followed and no cookies are kept, as with `post`. Proxies come from the
    environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) as with httpx, looked up once per
    origin (aiohttp's own `trust_env` looks them up in a thread on every request).
    """

    def __init__(self, *, max_connections: int = 512) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[
            tuple[str, str | None, int | None], tuple[URL | None, aiohttp.BasicAuth | None]
        ] = {}

    def _client(self) -> aiohttp.ClientSession:
        # created on first use, inside the event loop that uses it
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _proxy(self, url: URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
        origin = (url.scheme, url.host, url.port)
        found = self._proxies.get(origin)
        if found is None:
            try:
                found = get_env_proxy_for_url(url)
            except LookupError:
                found = (None, None)
            self._proxies[origin] = found
        return found

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str], timeout_s: float, target: str
    ) -> None:
        """POST once; return on 2xx, raise a classified `DeliveryError` otherwise (as `post`)."""
        try:
            target_url = URL(url)
            proxy, proxy_auth = self._proxy(target_url)
            async with (
                asyncio.timeout(timeout_s),
                self._client().post(
                    target_url,
                    data=content,
                    headers=headers,
                    allow_redirects=False,
                    proxy=proxy,
                    proxy_auth=proxy_auth,
                ) as response,
            ):
                status = response.status
                if 200 <= status < 300:
                    await _read_head_aiohttp(response, _DRAIN_BYTES)
                    return
                snippet = (await _read_head_aiohttp(response, ERROR_BODY_BYTES)).decode("utf-8", "replace")
        except TimeoutError as exc:
            raise DeliveryError(f"{target}: no answer within {timeout_s:g}s", retryable=True) from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError, ValueError) as exc:
            raise DeliveryError(f"{target}: unsupported URL: {exc}", retryable=False) from exc
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"{target}: {type(exc).__name__}: {exc}", retryable=True) from exc
        snippet = snippet.strip()
        detail = f": {snippet}" if snippet else ""
        raise DeliveryError(
            f"{target}: HTTP {status}{detail}", retryable=is_retryable_status(status), status=status
        )


async def _read_head_aiohttp(response: aiohttp.ClientResponse, limit: int) -> bytes:
    head = bytearray()
    while len(head) < limit:
        chunk = await response.content.read(limit - len(head))
        if not chunk:
            break
        head += chunk
    return bytes(head[:limit])
