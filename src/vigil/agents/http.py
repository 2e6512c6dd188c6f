"""Posts a batch to an agent over HTTP, the way the agent protocol describes it."""

from __future__ import annotations

from vigil import __version__
from vigil.masking import mask_url
from vigil.outbound import Outbound
from vigil.specs import AgentSpec

_OWN_HEADERS = frozenset({"content-type", "user-agent", "x-project-id", "x-request-id", "x-vigil-attempt"})


class HttpAgent:
    def __init__(self, spec: AgentSpec, client: Outbound) -> None:
        self._spec = spec
        self._client = client
        # built once: a delivery copies it and sets only the headers that vary per batch; Vigil's
        # own headers replace configured ones of the same name, whatever their case
        self._headers = {
            k: v.get_secret_value() for k, v in spec.headers.items() if k.lower() not in _OWN_HEADERS
        }
        self._headers |= {"Content-Type": "application/json", "User-Agent": f"vigil/{__version__}"}
        self._target = f"agent {mask_url(spec.endpoint)}"

    async def send(self, project_id: str, request_id: str, body: bytes, attempt: int) -> None:
        """Raises DeliveryError: retryable for 5xx, 408/425/429, timeouts and connection errors."""
        headers = self._headers.copy()
        headers["X-Project-ID"] = project_id
        headers["X-Request-ID"] = request_id
        headers["X-Vigil-Attempt"] = str(attempt)
        await self._client.post(
            self._spec.endpoint,
            content=body,
            headers=headers,
            timeout_s=self._spec.timeout_s,
            target=self._target,
        )
