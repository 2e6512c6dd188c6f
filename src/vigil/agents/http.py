"""Posts a batch to an agent over HTTP, the way seed 000 describes it."""

from __future__ import annotations

import httpx

from vigil import __version__
from vigil.errors import DeliveryError
from vigil.specs import AgentSpec


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 425, 429)


class HttpAgent:
    def __init__(self, spec: AgentSpec, client: httpx.AsyncClient) -> None:
        self._spec = spec
        self._client = client
        self._headers = {k: v.get_secret_value() for k, v in spec.headers.items()}

    async def send(self, project_id: str, request_id: str, body: bytes, attempt: int) -> None:
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "X-Project-ID": project_id,
            "X-Request-ID": request_id,
            "X-Vigil-Attempt": str(attempt),
            "User-Agent": f"vigil/{__version__}",
        }
        try:
            response = await self._client.post(
                self._spec.endpoint, content=body, headers=headers, timeout=self._spec.timeout_s
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"agent timed out after {self._spec.timeout_s}s", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"agent unreachable: {type(exc).__name__}: {exc}", retryable=True) from exc
        if response.is_success:
            return
        snippet = response.text[:300]
        raise DeliveryError(
            f"agent answered HTTP {response.status_code}: {snippet}",
            retryable=is_retryable_status(response.status_code),
            status=response.status_code,
        )
