"""Posts a batch to an agent over HTTP, the way the agent protocol describes it."""

from __future__ import annotations

from vigil import __version__
from vigil.masking import mask_url
from vigil.outbound import Outbound
from vigil.specs import AgentSpec


class HttpAgent:
    def __init__(self, spec: AgentSpec, client: Outbound) -> None:
        self._spec = spec
        self._client = client
        self._headers = {k: v.get_secret_value() for k, v in spec.headers.items()}
        self._target = f"agent {mask_url(spec.endpoint)}"

    async def send(self, project_id: str, request_id: str, body: bytes, attempt: int) -> None:
        """Raises DeliveryError: retryable for 5xx, 408/425/429, timeouts and connection errors."""
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "X-Project-ID": project_id,
            "X-Request-ID": request_id,
            "X-Vigil-Attempt": str(attempt),
            "User-Agent": f"vigil/{__version__}",
        }
        await self._client.post(
            self._spec.endpoint,
            content=body,
            headers=headers,
            timeout_s=self._spec.timeout_s,
            target=self._target,
        )
