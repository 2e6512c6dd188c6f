"""A webhook receiver that checks Vigil's signature the way a user's receiver should.

    async with WebhookReceiver(secret=b"s3cret") as rx:   # or: with WebhookReceiver(...) as rx:
        sink_spec = {"type": "webhook", "url": rx.url, "secret": "s3cret"}
        ...
        [delivery] = await rx.wait_for(1)
        assert delivery.header("x-vigil-delivery") == output_id
        rx.fail_next(2, status=503)

With a secret, a request whose signature or timestamp does not verify gets 401 (set
`reject_invalid=False` to accept and only record it). The verification is the public
`vigil.sinks.webhook.verify`, so these tests exercise what receivers are told to copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tests.doubles._server import LocalServer, RecordedRequest, Reply
from vigil.sinks.webhook import DEFAULT_TOLERANCE_S, verify

__all__ = ["RecordedRequest", "WebhookReceiver"]


class WebhookReceiver(LocalServer):
    def __init__(
        self,
        secret: bytes | str | None = None,
        *,
        path: str = "/hook",
        reject_invalid: bool = True,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
    ) -> None:
        super().__init__()
        self.secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self.path = path
        self.reject_invalid = reject_invalid
        self.tolerance_s = tolerance_s

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    def verify(self, request: RecordedRequest, *, now: float | None = None) -> bool:
        """Whether `request` carries a valid, fresh Vigil signature for this receiver's secret."""
        if self.secret is None:
            raise ValueError("this receiver has no secret to verify with")
        return verify(
            self.secret,
            request.header("x-vigil-timestamp"),
            request.header("x-vigil-signature"),
            request.body,
            tolerance_s=self.tolerance_s,
            now=now,
        )

    @property
    def payloads(self) -> list[Any]:
        """Decoded bodies of the requests the receiver accepted, oldest first."""
        return [r.json() for r in self.accepted]

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        if method != "POST":
            return (405, b"method not allowed", {}), "method not allowed"
        if path != self.path:
            return (404, b"not found", {}), f"unknown path {path}"
        if self.secret is not None:
            ok = verify(
                self.secret,
                headers.get("x-vigil-timestamp"),
                headers.get("x-vigil-signature"),
                body,
                tolerance_s=self.tolerance_s,
            )
            if not ok and self.reject_invalid:
                reply: Reply = (401, b'{"error":"invalid signature"}', {"content-type": "application/json"})
                return reply, "invalid signature"
        return (200, orjson.dumps({"ok": True}), {"content-type": "application/json"}), None
