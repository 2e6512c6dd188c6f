"""A service under test for `vigil replay`: a real HTTP server that answers every request with one
status (a 500 while it is broken, a 200 once fixed) and records what it got. `delay_next(n, s)`
makes it slow.

    with Service(status=500) as broken:
        ...  # vigil replay INC --target broken.base_url
        assert broken.requests[0].path == "/orders/42/pay"
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from tests.doubles._server import LocalServer, RecordedRequest, Reply

__all__ = ["RecordedRequest", "Service"]


class Service(LocalServer):
    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status = status

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        reply = orjson.dumps({"ok": self.status < 400, "path": path})
        return (self.status, reply, {"content-type": "application/json"}), None
