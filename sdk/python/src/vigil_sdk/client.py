"""Clients that send an agent's output for one batch back to Vigil."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from vigil_sdk._wire import ClientConfig, PreparedRequest, read_response, transport_error
from vigil_sdk.errors import VigilError

logger = logging.getLogger("vigil_sdk")

DEFAULT_ENDPOINT = "http://localhost:4318"


class Vigil:
    """Blocking client.

    `send_output` retries connection errors, timeouts, 429 and 5xx up to `max_retries` times,
    waiting as the server's Retry-After says or else with exponential backoff and full jitter.
    Every attempt of one call carries the same Idempotency-Key, so Vigil records the output once.
    """

    def __init__(
        self,
        api_key: str,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 0.5,
    ) -> None:
        self._config = ClientConfig.checked(api_key, endpoint, timeout, max_retries, backoff)
        self._http = httpx.Client(timeout=timeout)

    @property
    def endpoint(self) -> str:
        return self._config.endpoint

    def send_output(
        self, payload: Mapping[str, Any], request_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Send `payload` as the output for batch `request_id`; returns Vigil's JSON answer."""
        request = self._config.prepare(payload, request_id, idempotency_key)
        retry = 0
        while True:
            try:
                return self._attempt(request)
            except VigilError as error:
                if not error.retryable or retry >= self._config.max_retries:
                    raise
                delay = self._config.retry_delay(retry, error)
                _log_retry(request, retry, delay, error)
                time.sleep(delay)
            retry += 1

    def _attempt(self, request: PreparedRequest) -> dict[str, Any]:
        try:
            response = self._http.post(request.url, content=request.body, headers=request.headers)
        except httpx.TransportError as exc:
            raise transport_error(exc, request.url) from exc
        return read_response(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncVigil:
    """Asyncio twin of `Vigil`, with the same arguments and retry behaviour."""

    def __init__(
        self,
        api_key: str,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 0.5,
    ) -> None:
        self._config = ClientConfig.checked(api_key, endpoint, timeout, max_retries, backoff)
        self._http = httpx.AsyncClient(timeout=timeout)

    @property
    def endpoint(self) -> str:
        return self._config.endpoint

    async def send_output(
        self, payload: Mapping[str, Any], request_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Send `payload` as the output for batch `request_id`; returns Vigil's JSON answer."""
        request = self._config.prepare(payload, request_id, idempotency_key)
        retry = 0
        while True:
            try:
                return await self._attempt(request)
            except VigilError as error:
                if not error.retryable or retry >= self._config.max_retries:
                    raise
                delay = self._config.retry_delay(retry, error)
                _log_retry(request, retry, delay, error)
                await asyncio.sleep(delay)
            retry += 1

    async def _attempt(self, request: PreparedRequest) -> dict[str, Any]:
        try:
            response = await self._http.post(request.url, content=request.body, headers=request.headers)
        except httpx.TransportError as exc:
            raise transport_error(exc, request.url) from exc
        return read_response(response)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _log_retry(request: PreparedRequest, retry: int, delay: float, error: VigilError) -> None:
    logger.warning(
        "agent output not accepted (%s); retry %d in %.2fs (Idempotency-Key %s)",
        error,
        retry + 1,
        delay,
        request.headers["Idempotency-Key"],
    )
