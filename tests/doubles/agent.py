"""An agent as the agent protocol describes one: a real HTTP server that takes batches on /process and,
when given a Vigil endpoint and key, sends an output for each batch back with the SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tests.doubles._server import LocalServer, RecordedRequest, Reply


class AgentServer(LocalServer):
    def __init__(
        self, *, vigil_endpoint: str | None = None, api_key: str | None = None, port: int = 0
    ) -> None:
        super().__init__(port=port)
        self.vigil_endpoint = vigil_endpoint
        self.api_key = api_key
        self.send_errors: list[str] = []

    @property
    def url(self) -> str:
        return f"{self.base_url}/process"

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        if method != "POST" or path != "/process":
            return (404, b"not found", {}), "wrong route"
        try:
            records = orjson.loads(body)
        except orjson.JSONDecodeError:
            return (400, b"body is not JSON", {}), "invalid json"
        if not isinstance(records, list):
            return (400, b"body is not a JSON array", {}), "not an array"
        if self.vigil_endpoint and self.api_key:
            from vigil_sdk import GlassFlow

            gf = GlassFlow(api_key=self.api_key, endpoint=self.vigil_endpoint)
            try:
                gf.send_output(payload=self.summarize(records), request_id=headers.get("x-request-id", ""))
            except Exception as exc:
                self.send_errors.append(repr(exc))
                return (502, b"could not send output", {}), f"send failed: {exc!r}"
            finally:
                gf.close()
        return (200, b'{"status":"ok"}', {"content-type": "application/json"}), None

    @staticmethod
    def summarize(records: list[Any]) -> dict[str, Any]:
        services = sorted({r.get("resourceAttributes", {}).get("service.name", "") for r in records})
        return {
            "summary": f"{len(records)} error records from {', '.join(services)}",
            "severity": "critical",
            "root_cause": "Database connection pool exhausted",
            "remediation": ["Increase max_connections", "Add connection pooling"],
            "services": services,
            "processed": len(records),
        }

    def batches(self) -> list[tuple[RecordedRequest, list[dict[str, Any]]]]:
        return [(r, r.json()) for r in self.accepted if r.path == "/process"]
