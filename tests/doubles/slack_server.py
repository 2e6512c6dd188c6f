"""A Slack incoming-webhook endpoint that refuses messages the way Slack does.

    async with SlackServer() as slack:                  # or: with SlackServer() as slack:
        spec = {"type": "slack", "webhook_url": slack.url}
        ...
        await slack.wait_for(1)                          # or slack.wait_for_sync(1) from a thread
        [message] = slack.messages                       # accepted message bodies
        slack.fail_next(1, status=429)                   # body and Retry-After as Slack sends them

Answers like Slack: 200 `ok`; 400 `invalid_payload` (not a JSON object), 400 `no_text` (neither
`text` nor `blocks`), 400 `invalid_blocks` (structure or limits broken; the reason is kept in
`RecordedRequest.error`), 404 `no_service` (any path but `url`'s). The checks are the subset of
Slack's that a sink can break: block types, header (plain_text, <= 150 chars), section text
(<= 3000) and fields (<= 10, each <= 2000), context elements (1-10), <= 50 blocks.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from tests.doubles._server import LocalServer, RecordedRequest, Reply

__all__ = ["RecordedRequest", "SlackServer", "validate_message"]

MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)

ERROR_BODIES = {
    400: b"invalid_payload",
    403: b"invalid_token",
    404: b"no_service",
    410: b"channel_is_archived",
    429: b"rate_limited",
    500: b"internal_error",
    503: b"service_unavailable",
}


def _slack_len(text: str) -> int:
    # Slack is written in JavaScript-land; UTF-16 units is the strictest way it may count.
    return len(text.encode("utf-16-le")) // 2


def _check_text(obj: Any, where: str, limit: int, types: frozenset[str]) -> str | None:
    if not isinstance(obj, dict):
        return f"{where} must be a text object"
    if obj.get("type") not in types:
        return f"{where} type must be one of {sorted(types)}, got {obj.get('type')!r}"
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return f"{where} text must be a non-empty string"
    if _slack_len(text) > limit:
        return f"{where} text must be at most {limit} characters, got {_slack_len(text)}"
    return None


_ANY_TEXT = frozenset({"plain_text", "mrkdwn"})
_PLAIN = frozenset({"plain_text"})


def _check_block(block: Any, i: int) -> str | None:
    where = f"blocks[{i}]"
    if not isinstance(block, dict):
        return f"{where} must be an object"
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        return f"{where} has unknown type {kind!r}"
    if kind == "header":
        return _check_text(block.get("text"), f"{where}.text", HEADER_MAX, _PLAIN)
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            return f"{where} needs text or fields"
        if text is not None and (err := _check_text(text, f"{where}.text", SECTION_TEXT_MAX, _ANY_TEXT)):
            return err
        if fields is not None:
            if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
                return f"{where}.fields must be a list of 1-{MAX_FIELDS} text objects"
            for j, f in enumerate(fields):
                if err := _check_text(f, f"{where}.fields[{j}]", FIELD_TEXT_MAX, _ANY_TEXT):
                    return err
        return None
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            return f"{where}.elements must be a list of 1-{MAX_CONTEXT_ELEMENTS} elements"
        for j, e in enumerate(elements):
            if isinstance(e, dict) and e.get("type") == "image":
                continue
            if err := _check_text(e, f"{where}.elements[{j}]", SECTION_TEXT_MAX, _ANY_TEXT):
                return err
    return None


def validate_message(message: Any) -> tuple[str, str] | None:
    """None if Slack would take `message`, else (Slack's error code, the reason)."""
    if not isinstance(message, dict):
        return "invalid_payload", "body must be a JSON object"
    text, blocks = message.get("text"), message.get("blocks")
    if text is not None and not isinstance(text, str):
        return "invalid_payload", "text must be a string"
    if blocks is None:
        return None if text else ("no_text", "neither text nor blocks")
    if not isinstance(blocks, list):
        return "invalid_blocks", "blocks must be a list"
    if len(blocks) > MAX_BLOCKS:
        return "invalid_blocks", f"at most {MAX_BLOCKS} blocks, got {len(blocks)}"
    if not blocks and not text:
        return "no_text", "neither text nor blocks"
    for i, block in enumerate(blocks):
        if err := _check_block(block, i):
            return "invalid_blocks", err
    return None


class SlackServer(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        # Shaped like a real incoming-webhook path; the token part is what makes it a secret.
        self.path = f"/services/T0VIGIL00/B0VIGIL00/{secrets.token_urlsafe(18)}"

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    @property
    def messages(self) -> list[Any]:
        """Bodies of the messages Slack would have posted, oldest first."""
        return [r.json() for r in self.accepted]

    def failure_body(self, status: int) -> bytes:
        return ERROR_BODIES.get(status, b"error")

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        *,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if status == 429 and headers is None:
            headers = {"retry-after": "1"}
        super().fail_next(count, status, body=body, headers=headers)

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        if path != self.path:
            return (404, b"no_service", {}), "no_service"
        if method != "POST":
            return (405, b"invalid_method", {}), "invalid_method"
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return (400, b"invalid_payload", {}), "invalid_payload: body is not JSON"
        problem = validate_message(message)
        if problem is not None:
            code, reason = problem
            return (400, code.encode(), {}), f"{code}: {reason}"
        return (200, b"ok", {}), None
