"""An Anthropic Messages API server whose model answers what the test scripts.

    async with AnthropicServer(api_key="sk-ant-test") as server:
        config = LlmConfig(provider="anthropic", model="claude-test", base_url=server.base_url, api_key=...)
        server.reply_json({...})        # with a forced tool (tool_choice "tool", or "any" and one
                                        # tool): a tool_use block with this input
        server.reply_text("not json")   # text that is no JSON object: a text block, as a model that
                                        # ignored the tool would send
        server.fail_next(1, 529)        # Anthropic's error body ("overloaded_error")

Refuses like Anthropic: 404 for another path, 401 for a wrong or missing key (in x-api-key or, as
newer SDKs send it, Authorization: Bearer), 400 without
anthropic-version, without model, max_tokens or messages, or when tool_choice names a tool that
is not in tools or whose input_schema is not an object schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tests.doubles._server import RecordedRequest, Reply
from tests.doubles.openai_server import JSON, ModelServer

__all__ = ["AnthropicServer", "RecordedRequest"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _anthropic_error(message: str, status: int) -> bytes:
    kind = _ERROR_TYPES.get(status, "api_error")
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def _block_text(block: dict[str, Any]) -> str:
    """The text a content block shows the model: text, a tool call's input, a tool result."""
    if block.get("type") == "tool_use":
        return orjson.dumps(block.get("input")).decode()
    if block.get("type") == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return "\n".join(str(part.get("text", "")) for part in content)
        return str(content or "")
    return str(block.get("text", ""))


class AnthropicServer(ModelServer):
    def failure_body(self, status: int) -> bytes:
        return _anthropic_error(f"scripted failure {status}", status)

    def prompt(self, request: RecordedRequest) -> str:
        body = request.json()
        system = body.get("system", "")
        if isinstance(system, list):
            system = "\n".join(str(block.get("text", "")) for block in system)
        texts = [str(system)]
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                texts += [_block_text(block) for block in content]
            else:
                texts.append(str(content))
        return "\n".join(texts)

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        def refuse(status: int, message: str) -> tuple[Reply, str | None]:
            return (status, _anthropic_error(message, status), JSON), message

        if method != "POST" or path != "/v1/messages":
            return refuse(404, f"Not found: {path}")
        presented = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and presented != self.api_key:
            return refuse(401, "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return refuse(400, "anthropic-version: header is required")
        request = self._json_body(body)
        if not isinstance(request, dict) or not isinstance(request.get("model"), str):
            return refuse(400, "model: Field required")
        if not isinstance(request.get("max_tokens"), int):
            return refuse(400, "max_tokens: Field required")
        if not isinstance(request.get("messages"), list) or not request["messages"]:
            return refuse(400, "messages: at least one message is required")
        forced: str | None = None
        choice = request.get("tool_choice")
        tools = {t.get("name"): t for t in request.get("tools", []) if isinstance(t, dict)}
        if isinstance(choice, dict) and choice.get("type") == "any" and len(tools) == 1:
            choice = {"type": "tool", "name": next(iter(tools))}
        if isinstance(choice, dict) and choice.get("type") == "tool":
            forced = choice.get("name")
            if forced not in tools:
                return refuse(400, f"tool_choice: tool {forced!r} is not in tools")
            if (tools[forced].get("input_schema") or {}).get("type") != "object":
                return refuse(400, "tools.0.input_schema.type: Input should be 'object'")
        text = self.next_reply()
        if text is None:
            return refuse(500, "no reply scripted")
        parsed = self._json_body(text.encode())
        if forced is not None and isinstance(parsed, dict):
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": f"toolu_{next(self._ids):04d}", "name": forced, "input": parsed}
            ]
            stop_reason = "tool_use"
        else:
            content, stop_reason = [{"type": "text", "text": text}], "end_turn"
        reply: dict[str, Any] = {
            "id": f"msg_{next(self._ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": request["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        if self.usage is not None:
            reply["usage"] = {"input_tokens": self.usage[0], "output_tokens": self.usage[1]}
        return (200, orjson.dumps(reply), JSON), None
