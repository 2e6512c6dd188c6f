"""Slack sink: posts each agent output to an incoming webhook as a Block Kit message.

Payloads in the common shape (`summary`, `severity`, `root_cause`, `remediation`, `service(s)`)
read as an incident card; anything else gets a generic card with the payload as compact JSON.
Every text is cut to Slack's limits, so no payload makes Slack refuse the message.

Slack answers 200 `ok`; 4xx answers (`invalid_payload`, `invalid_token`, `no_service`, ...) are
permanent, 429 and 5xx are retried.
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from typing import Any

import httpx
import orjson

from vigil.outputs import OutputEnvelope
from vigil.sinks.base import Sink, post
from vigil.specs import SinkSpec, SlackSinkSpec

HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FALLBACK_TEXT_MAX = 3000
MAX_BLOCKS = 50
DETAIL_VALUE_MAX = 300
ELLIPSIS = "…"

_KNOWN_KEYS = frozenset({"summary", "severity", "root_cause", "remediation", "service", "services"})

_EMOJI_BY_SEVERITY = {
    "critical": ":red_circle:",
    "fatal": ":red_circle:",
    "error": ":red_circle:",
    "high": ":red_circle:",
    "warning": ":large_orange_circle:",
    "warn": ":large_orange_circle:",
    "medium": ":large_orange_circle:",
    "informational": ":large_blue_circle:",
    "info": ":large_blue_circle:",
    "low": ":large_blue_circle:",
}
_DEFAULT_EMOJI = ":white_circle:"
_WHITESPACE = re.compile(r"\s+")


class SlackSink(Sink):
    def __init__(self, spec: SlackSinkSpec, client: httpx.AsyncClient) -> None:
        self.spec = spec
        self.name = spec.name or spec.type
        self._client = client

    @classmethod
    def from_spec(cls, spec: SinkSpec, client: httpx.AsyncClient) -> SlackSink:
        if not isinstance(spec, SlackSinkSpec):
            raise TypeError(f"SlackSink needs a slack spec, got {spec.type!r}")
        return cls(spec, client)

    async def deliver(self, output: OutputEnvelope) -> None:
        await post(
            self._client,
            self.spec.webhook_url.get_secret_value(),
            content=orjson.dumps(build_message(output)),
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout_s=self.spec.timeout_s,
            # The webhook URL is the credential: errors name the sink, never the URL.
            target=f"slack {self.name!r}",
        )


def build_message(output: OutputEnvelope) -> dict[str, Any]:
    """The incoming-webhook body for one output: Block Kit blocks plus a plain `text` fallback."""
    payload = output.payload
    severity = _scalar_text(payload.get("severity"))
    summary = _scalar_text(payload.get("summary"))
    emoji = _EMOJI_BY_SEVERITY.get(severity.lower(), _DEFAULT_EMOJI)
    title = summary or "Agent output"

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(f"{emoji} {title}", HEADER_MAX)},
        {"type": "section", "fields": _fields(output, severity)},
    ]
    if summary:
        root_cause = _text(payload.get("root_cause"))
        if root_cause:
            blocks.append(_section("Root cause", escape(root_cause)))
        remediation = _remediation(payload.get("remediation"))
        if remediation:
            blocks.append(_section("Remediation", remediation))
        details = _details({k: v for k, v in payload.items() if k not in _KNOWN_KEYS})
        if details:
            blocks.append(_section("Details", details))
    else:
        blocks.append(_code_section("Payload", _compact_json(payload)))
    blocks = blocks[: MAX_BLOCKS - 1]
    blocks.append({"type": "context", "elements": [_mrkdwn(_context(output), SECTION_TEXT_MAX)]})

    prefix = f"[{severity.upper()}] " if severity else ""
    fallback = f"{prefix}{title}" if summary else f"{prefix}Agent output for request {output.request_id}"
    return {"text": truncate(escape(fallback), FALLBACK_TEXT_MAX, entities=True), "blocks": blocks}


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only these three characters are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int, *, entities: bool = False) -> str:
    """Cut `text` to `limit` UTF-16 code units (the longest way Slack may count), ellipsis included.

    With `entities`, an escape such as `&amp;` is never cut in half.
    """
    units = text.encode("utf-16-le")
    if len(units) <= 2 * limit:
        return text
    head = units[: 2 * (limit - len(ELLIPSIS))]
    if head and 0xD800 <= int.from_bytes(head[-2:], "little") <= 0xDBFF:
        head = head[:-2]  # never split a surrogate pair
    cut = head.decode("utf-16-le")
    if entities:
        amp = cut.rfind("&")
        if amp != -1 and ";" not in cut[amp:]:
            cut = cut[:amp]
    return cut + ELLIPSIS


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(_WHITESPACE.sub(" ", text).strip(), limit), "emoji": True}


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit, entities=True)}


def _section(title: str, body: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(f"*{title}*\n{body}", SECTION_TEXT_MAX)}


def _code_section(title: str, code: str) -> dict[str, Any]:
    # The closing fence must survive truncation, so the code is cut before it is wrapped.
    fence = "```"
    budget = SECTION_TEXT_MAX - len(f"*{title}*\n") - 2 * len(fence)
    code = truncate(escape(code.replace(fence, "`\u200b``")), budget, entities=True)
    return {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{fence}{code}{fence}"}}


def _fields(output: OutputEnvelope, severity: str) -> list[dict[str, Any]]:
    pairs: list[tuple[str, str]] = []
    if severity:
        pairs.append(("Severity", escape(severity)))
    services = _services(output.payload)
    if services:
        pairs.append(("Services" if "," in services else "Service", escape(services)))
    pairs.append(("Project", f"`{escape(output.project_id)}`"))
    pairs.append(("Request id", f"`{escape(output.request_id)}`"))
    return [_mrkdwn(f"*{label}*\n{value}", FIELD_TEXT_MAX) for label, value in pairs]


def _services(payload: dict[str, Any]) -> str:
    names: list[str] = []
    for key in ("service", "services"):
        value = payload.get(key)
        items = value if isinstance(value, list) else [value]
        names.extend(t for t in (_text(item) for item in items) if t and t not in names)
    return ", ".join(names)


def _remediation(value: Any) -> str:
    if not isinstance(value, list):
        return escape(_text(value))
    steps = [escape(_one_line(step)) for step in value]
    lines = [f"{number}. {step}" for number, step in enumerate((s for s in steps if s), start=1)]
    return _whole_lines(lines, "Remediation", "steps")


def _details(extra: dict[str, Any]) -> str:
    lines = []
    for key, value in extra.items():
        text = _one_line(value)
        if text:
            lines.append(f"*{escape(key)}*: {escape(truncate(text, DETAIL_VALUE_MAX))}")
    return _whole_lines(lines, "Details", "fields")


def _whole_lines(lines: list[str], title: str, noun: str) -> str:
    """As many whole lines as fit a section under `title`, then how many were left out.

    Cutting a list mid-item would lose the fact that more items exist and could split markup.
    """
    budget = SECTION_TEXT_MAX - _units(f"*{title}*\n")
    kept: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        rest = len(lines) - i - 1
        reserve = _units(f"\n_… {rest} more {noun}_") if rest else 0
        if kept and used + _units(line) + reserve > budget:
            kept.append(f"_… {len(lines) - i} more {noun}_")
            break
        kept.append(line)
        used += _units(line) + 1
    return "\n".join(kept)


def _context(output: OutputEnvelope) -> str:
    parts: list[str] = []
    if output.pipeline:
        parts.append(f"Pipeline *{escape(output.pipeline)}*")
    if output.batch_records is not None:
        noun = "record" if output.batch_records == 1 else "records"
        parts.append(f"{output.batch_records} {noun}")
    received = output.received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    # Slack renders <!date^...> in each reader's time zone; the text after | is the fallback.
    fallback = received.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts.append(
        f"Received <!date^{int(received.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"
    )
    return " · ".join(parts)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _one_line(value: Any) -> str:
    return _WHITESPACE.sub(" ", _text(value)).strip()


def _scalar_text(value: Any) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return _WHITESPACE.sub(" ", str(value)).strip()
    return ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return _compact_json(value)


def _compact_json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode("utf-8")
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which a parsed JSON payload can hold.
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
