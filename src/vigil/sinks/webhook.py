"""Webhook sink: POSTs each agent output, signed, to a URL the user runs.

Request (public contract; receivers may rely on every line of it):

    POST <url>
    Content-Type: application/json
    User-Agent: vigil/<version>
    X-Vigil-Delivery: <output id>            same value on every retry of one output: deduplicate on it
    X-Vigil-Timestamp: <unix seconds>        when this attempt was signed, decimal integer
    X-Vigil-Signature: v1=<hex digest>       only when the sink has a `secret`
    <the sink's extra `headers`>             never replace the headers above

    {"id": ..., "project_id": ..., "request_id": ..., "pipeline": ... | null,
     "batch_records": ... | null, "received_at": "<RFC 3339>", "payload": {...}}

Signature: `v1=` followed by the lowercase hex HMAC-SHA256, keyed with the UTF-8 bytes of the
secret, of the ASCII timestamp, a dot, and the raw request body:

    hmac_sha256(secret, f"{X-Vigil-Timestamp}.".encode() + body).hexdigest()

To verify, recompute it over the body exactly as received (before any JSON parsing), compare in
constant time, and reject timestamps more than a few minutes from your clock so a captured
request cannot be replayed later. `verify` below does all of it. A receiver may list several
comma-separated `v1=` values in the header it checks; one match is enough, which lets a secret
be rotated without downtime.

A 2xx answer means delivered. 408, 425, 429 and 5xx answers, timeouts and connection errors are
retried; any other answer (including redirects, which are not followed) is a permanent failure.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
import orjson

from vigil import __version__
from vigil.errors import DeliveryError
from vigil.outputs import OutputEnvelope
from vigil.sinks.base import Sink, post
from vigil.specs import SinkSpec, WebhookSinkSpec

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300
ENVELOPE_FIELDS = frozenset(
    {"id", "project_id", "request_id", "pipeline", "batch_records", "received_at", "payload"}
)
"""Pinned so the webhook body changes only when this contract does, not whenever the envelope grows."""


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `X-Vigil-Signature` value for `body` sent at `timestamp`."""
    digest = hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: bytes | str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether a delivery is authentic and fresh; for receivers, written to be copied."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not timestamp_header or not signature_header:
        return False
    stamp = timestamp_header.strip()
    if not stamp.isascii() or not stamp.isdigit():
        return False
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).encode("ascii")
    candidates = [c.strip().encode("utf-8", "replace") for c in signature_header.split(",")]
    # Compare against every candidate, so timing does not reveal which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    return matched


def encode_envelope(output: OutputEnvelope) -> bytes:
    try:
        return orjson.dumps(output.model_dump(mode="json", include=set(ENVELOPE_FIELDS)))
    except orjson.JSONEncodeError as exc:
        # Only a payload JSON cannot carry (an integer beyond 64 bits) gets here; retrying won't help.
        raise DeliveryError(f"output {output.id} cannot be encoded as JSON: {exc}", retryable=False) from exc


class WebhookSink(Sink):
    def __init__(
        self,
        spec: WebhookSinkSpec,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.name = spec.name or spec.type
        self._client = client
        self._url = str(spec.url)
        self._secret = spec.secret.get_secret_value().encode("utf-8") if spec.secret else None
        self._clock = clock

    @classmethod
    def from_spec(cls, spec: SinkSpec, client: httpx.AsyncClient) -> WebhookSink:
        if not isinstance(spec, WebhookSinkSpec):
            raise TypeError(f"WebhookSink needs a webhook spec, got {spec.type!r}")
        return cls(spec, client)

    def build_request(self, output: OutputEnvelope) -> tuple[httpx.Headers, bytes]:
        body = encode_envelope(output)
        timestamp = int(self._clock())
        # Extra headers go first so that setting ours replaces any same-named one, whatever its case.
        headers = httpx.Headers(self.spec.headers)
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = f"vigil/{__version__}"
        headers["X-Vigil-Delivery"] = output.id
        headers["X-Vigil-Timestamp"] = str(timestamp)
        if self._secret is not None:
            headers["X-Vigil-Signature"] = sign(self._secret, timestamp, body)
        elif "X-Vigil-Signature" in headers:
            del headers["X-Vigil-Signature"]
        return headers, body

    async def deliver(self, output: OutputEnvelope) -> None:
        headers, body = self.build_request(output)
        await post(
            self._client,
            self._url,
            content=body,
            headers=headers,
            timeout_s=self.spec.timeout_s,
            target=f"webhook {self.name!r}",
        )
