"""The one outbound HTTP call that agents and sinks make, so failures classify the same everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Iterator, Mapping

import aiohttp
import httpx
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from vigil.errors import DeliveryError
from vigil.http1 import Http1Pool
from vigil.outbound_policy import OutboundPolicy, OutboundRefused, ip_address_in

ERROR_BODY_BYTES = 256
"""How much of a failed answer goes into the error: enough for Slack's `invalid_blocks`, never a page
(and, scrubbed by `DeliveryError`, never a credential the receiver echoed)."""

_DRAIN_BYTES = 64 * 1024
"""A short success body is read to the end so the connection can be reused; a long one is abandoned."""

_URLS_KEPT = 1024


@functools.lru_cache(maxsize=64)
def _timeout(total_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total_s)


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


class Outbound:
    """The HTTP client of deliveries. POSTs, which every delivered batch makes, go over
    `vigil.http1`'s kept-alive connections; other requests over one aiohttp session (a
    keep-alive pool per host). Either way every connection is checked against the outbound
    policy: redirects are not followed, no cookies are kept, no proxy is used, and a host name is
    resolved by the client itself, every address it resolves to checked, and one of those
    addresses connected to (`_GuardedResolver` for aiohttp); a URL's IP address is checked
    before its first request.
    """

    def __init__(self, policy: OutboundPolicy | None = None, *, max_connections: int = 512) -> None:
        self._policy = policy or OutboundPolicy()
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}
        self._allowed: dict[tuple[str, int], tuple[int, int]] = {}
        self._posts = Http1Pool(self._policy, max_connections=max_connections)

    def _client(self) -> aiohttp.ClientSession:
        # created on first use, inside the event loop that uses it
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, resolver=_GuardedResolver(self._policy)
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _url(self, url: str) -> URL:
        """Parsed once per endpoint (a worker posts to one endpoint again and again)."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            parsed = self._urls[url] = URL(url)
        return parsed

    async def aclose(self) -> None:
        self._posts.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> Outbound:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _check_literal(self, url: URL) -> None:
        """aiohttp connects to an IP address in the URL without asking the resolver. Checked
        again whenever the policy changed (Vigil's own ports join it as its servers bind them);
        an address it allowed is remembered until then."""
        host = url.host or ""
        key = (host, url.port or 0)
        version = self._policy.version
        if self._allowed.get(key) == version:
            return
        address = ip_address_in(host) if host[:1].isdigit() or ":" in host else None
        if address is not None:
            self._policy.check(host, url.port or 0, [address])
        if len(self._allowed) >= _URLS_KEPT:
            self._allowed.clear()
        self._allowed[key] = version

    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str], timeout_s: float, target: str
    ) -> None:
        """POST once; return on 2xx, raise a classified `DeliveryError` otherwise (as `post`).

        Every batch takes this path, so it goes over `vigil.http1`'s kept-alive connections
        rather than aiohttp's general request machinery."""
        try:
            answer = await self._posts.post(
                self._url(url),
                content,
                headers,
                timeout_s=timeout_s,
                limit=ERROR_BODY_BYTES,
                drain=_DRAIN_BYTES,
            )
        except OutboundRefused as exc:
            raise _refused(target, exc) from None
        except TimeoutError as exc:
            raise DeliveryError(f"{target}: no answer within {timeout_s:g}s", retryable=True) from exc
        except ValueError as exc:
            raise DeliveryError(f"{target}: cannot post: {exc}", retryable=False) from exc
        except OSError as exc:
            raise DeliveryError(f"{target}: {type(exc).__name__}: {exc}", retryable=True) from exc
        status = answer.status
        if 200 <= status < 300:
            return
        snippet = answer.head.decode("utf-8", "replace").strip()
        detail = f": {snippet}" if snippet else ""
        raise DeliveryError(
            f"{target}: HTTP {status}{detail}", retryable=is_retryable_status(status), status=status
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        target: str,
        json_body: object = None,
    ) -> tuple[int, bytes]:
        """One request of any method, answered with any status: the status and the first
        `ERROR_BODY_BYTES` of the answer; a classified `DeliveryError` when there is no answer."""
        with _classified(target, timeout_s):
            target_url = self._url(url)
            self._check_literal(target_url)
            body = None if json_body is None else orjson.dumps(json_body)
            sent = {**headers, "Content-Type": "application/json"} if body is not None else headers
            async with self._client().request(
                method,
                target_url,
                data=body,
                headers=sent,
                allow_redirects=False,
                timeout=_timeout(timeout_s),
            ) as response:
                return response.status, await _read_head_aiohttp(response, ERROR_BODY_BYTES)


@contextlib.contextmanager
def _classified(target: str, timeout_s: float) -> Iterator[None]:
    """A request's failures as `DeliveryError`s: retryable or not, named by `target`; anything
    else is a bug and propagates."""
    try:
        yield
    except OutboundRefused as exc:
        raise _refused(target, exc) from None
    except TimeoutError as exc:
        raise DeliveryError(f"{target}: no answer within {timeout_s:g}s", retryable=True) from exc
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError, ValueError) as exc:
        raise DeliveryError(f"{target}: unsupported URL: {exc}", retryable=False) from exc
    except aiohttp.ClientError as exc:
        raise DeliveryError(f"{target}: {type(exc).__name__}: {exc}", retryable=True) from exc


def _refused(target: str, exc: OutboundRefused) -> DeliveryError:
    return DeliveryError(f"{target}: refused by the outbound policy: {exc}", retryable=False)


class _GuardedResolver(AbstractResolver):
    """aiohttp's resolver, with every address a name resolves to checked against the policy: the
    connector then connects to one of those addresses, so nothing changes between check and connect."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        addresses = [a for a in (ip_address_in(str(r["host"])) for r in found) if a is not None]
        self._policy.check(host, port, addresses)
        return found

    async def close(self) -> None:
        await self._inner.close()


async def _read_head_aiohttp(response: aiohttp.ClientResponse, limit: int) -> bytes:
    content = response.content
    head = await content.read(limit)
    if len(head) >= limit or content.at_eof():  # a short answer has arrived whole: one read
        return head
    buffer = bytearray(head)
    while len(buffer) < limit:
        chunk = await content.read(limit - len(buffer))
        if not chunk:
            break
        buffer += chunk
    return bytes(buffer[:limit])
