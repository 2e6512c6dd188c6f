"""What the sync and async clients share: building the request, reading the answer, pacing retries."""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vigil_sdk._version import __version__
from vigil_sdk.errors import VigilAPIError, VigilConnectionError, VigilError, VigilTimeoutError

OUTPUT_PATH = "/internal/agent-output"

MAX_DELAY_S = 60.0
"""Upper bound on any single wait, so a large Retry-After cannot park an agent's request for hours."""


@dataclass(frozen=True)
class PreparedRequest:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class ClientConfig:
    api_key: str
    endpoint: str
    timeout: float
    max_retries: int
    backoff: float

    @classmethod
    def checked(
        cls, api_key: str, endpoint: str, timeout: float, max_retries: int, backoff: float
    ) -> ClientConfig:
        if not api_key:
            raise ValueError("api_key must not be empty")
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http:// or https:// URL, got {endpoint!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if backoff < 0:
            raise ValueError("backoff must be 0 or more")
        return cls(api_key, endpoint.rstrip("/"), timeout, max_retries, backoff)

    def prepare(
        self, payload: Mapping[str, Any], request_id: str, idempotency_key: str | None
    ) -> PreparedRequest:
        if not request_id:
            raise ValueError("request_id must not be empty: pass the X-Request-ID header of the batch")
        # Encoded once so every retry sends identical bytes under the same Idempotency-Key.
        body = json.dumps({"request_id": request_id, "payload": dict(payload)}).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"vigil-sdk-python/{__version__}",
            "X-API-Key": self.api_key,
            "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
        }
        return PreparedRequest(self.endpoint + OUTPUT_PATH, body, headers)

    def retry_delay(self, retry: int, error: VigilError) -> float:
        """Seconds to wait before retry number `retry` (0-based): Retry-After, else full jitter."""
        if isinstance(error, VigilAPIError) and error.retry_after is not None:
            return min(error.retry_after, MAX_DELAY_S)
        return random.uniform(0.0, min(MAX_DELAY_S, self.backoff * 2**retry))


def read_response(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer; anything else raises a `VigilError`."""
    if not response.is_success:
        raise api_error(response)
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise VigilError(
            f"{response.request.url} answered {response.status_code} without a JSON object; "
            "is the endpoint a Vigil receiver?"
        )
    return data


def api_error(response: httpx.Response) -> VigilAPIError:
    status = response.status_code
    code = f"http_{status}"
    message = response.reason_phrase or code
    details: dict[str, Any] = {}
    try:
        body: Any = response.json()
    except ValueError:
        body = None
        if response.text:
            message = response.text[:500]
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            code = body["error"]
            message = str(body.get("message") or message)
            raw_details = body.get("details")
            details = raw_details if isinstance(raw_details, dict) else {}
        else:
            details = body
    return VigilAPIError(
        status, code, message, details, retry_after=parse_retry_after(response.headers.get("Retry-After"))
    )


def transport_error(exc: httpx.TransportError, url: str) -> VigilConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return VigilTimeoutError(f"no answer from {url} in time: {exc!r}")
    return VigilConnectionError(f"could not reach {url}: {exc!r}")


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now; it may be a number of seconds or an HTTP date."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
