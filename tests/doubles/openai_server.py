"""An OpenAI-compatible chat-completions server whose model answers what the test scripts.

    async with OpenAIServer(api_key="sk-test") as server:        # or: with OpenAIServer() as server:
        config = LlmConfig(provider="openai", model="gpt-test", base_url=server.api_base, api_key=...)
        server.reply_json({"summary": ...})                      # the next answer's content
        server.reply_text('{"summary": ')                         # malformed JSON
        server.fail_next(1, 429, headers={"Retry-After": "0"})   # an error status, OpenAI's body
        server.delay_next(1, 2.0)                                 # hold the next answer (timeouts)
        server.prompt(server.requests[-1])                        # the system and user text it got
        server.responder = lambda prompt: ...                     # unscripted answers read the prompt
        server.reply_json(call("recent_records", {"service": "x"}))  # a call of that tool, when tools are offered

Refuses like OpenAI: 404 for another path, 401 for a wrong or missing bearer key (echoing the key it
was given, as some compatible proxies do, so tests can prove callers scrub it), 400 for a body
without model or messages, a strict json_schema whose objects are not closed and fully required,
or json_object without the word "json" in the messages. `reject_json_schema=True` answers
json_schema with the 400 that servers without structured output send, `reject_tools=True` any
request with tools with the 400 of a server that has no tool-call parser. When the request requires
a tool call (`tool_choice` "required", Mistral's "any", or a named function), a scripted JSON
object comes back as a call of that tool (the first tool, unless named); any other text comes back
as content, as a model ignoring the tool would answer. Groq's path (/openai/v1/...) is served too. Usage reports `usage` (input, output) tokens; None leaves the
field out.

`ModelServer` is the part the Anthropic and Gemini doubles share: the reply script, the key and usage.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tests.doubles._server import LocalServer, RecordedRequest, Reply

__all__ = ["ModelServer", "OpenAIServer", "RecordedRequest", "call"]

JSON = {"content-type": "application/json"}
CALL = "__call_tool__"


def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A scripted reply that calls `tool` (of those the request offers) with `arguments`."""
    return {CALL: tool, "arguments": arguments}


class ModelServer(LocalServer):
    def __init__(
        self,
        *,
        api_key: str | None = None,
        usage: tuple[int, int] | None = (100, 50),
        default_reply: str | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.api_key = api_key
        self.usage = usage
        self.default_reply = default_reply
        """Content when nothing is scripted; None answers 500 so a test missing a reply shows."""
        self._replies: deque[str] = deque()
        self.responder: Callable[[str], str] | None = None
        """A model that answers from what it is shown, when nothing is scripted."""
        self._ids = itertools.count(1)

    def reply_text(self, *texts: str) -> None:
        """The model's next answers, verbatim (malformed JSON included)."""
        with self._cond:
            self._replies.extend(texts)

    def reply_json(self, *answers: Any) -> None:
        self.reply_text(*(orjson.dumps(a).decode() for a in answers))

    def next_reply(self) -> str | None:
        with self._cond:
            return self._replies.popleft() if self._replies else self.default_reply

    def reply_for(self, prompt: str) -> str | None:
        """The scripted answer, else the responder's answer to `prompt`, else the default."""
        with self._cond:
            if self._replies:
                return self._replies.popleft()
        return self.responder(prompt) if self.responder is not None else self.default_reply

    def prompt(self, request: RecordedRequest) -> str:
        """Every piece of text a request showed the model, joined by newlines."""
        raise NotImplementedError

    def _json_body(self, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None


def strict_schema_problem(schema: Any, where: str = "schema") -> str | None:
    """Why OpenAI's strict mode would refuse `schema`: every object closed, every property required."""
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "object":
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return f"In context={where}, 'additionalProperties' is required to be supplied and to be false."
        if sorted(schema.get("required", [])) != sorted(properties):
            return f"In context={where}, 'required' is required to be supplied and to be an array including every key in properties."
        for name, sub in properties.items():
            if problem := strict_schema_problem(sub, f"{where}.{name}"):
                return problem
    if "items" in schema:
        return strict_schema_problem(schema["items"], f"{where}[]")
    return None


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "service_unavailable",
}


def _openai_error(message: str, status: int, param: str | None = None) -> bytes:
    kind = _ERROR_TYPES.get(status, "server_error")
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": None}})


def _required_tool(request: dict[str, Any]) -> str | None:
    """The function a request forces the model to call, if it forces one."""
    tools = [t.get("function", {}).get("name") for t in request.get("tools") or [] if isinstance(t, dict)]
    choice = request.get("tool_choice")
    if choice in ("required", "any") and tools:  # "any": Mistral's word for it
        return str(tools[0])
    if isinstance(choice, dict) and choice.get("type") == "function":
        return str(choice.get("function", {}).get("name"))
    return None


class OpenAIServer(ModelServer):
    def __init__(
        self,
        *,
        api_key: str | None = None,
        usage: tuple[int, int] | None = (100, 50),
        default_reply: str | None = None,
        reject_json_schema: bool = False,
        reject_tools: bool = False,
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, usage=usage, default_reply=default_reply, port=port)
        self.reject_json_schema = reject_json_schema
        self.reject_tools = reject_tools

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def failure_body(self, status: int) -> bytes:
        return _openai_error(f"scripted failure {status}", status)

    def prompt(self, request: RecordedRequest) -> str:
        texts: list[str] = []
        for message in request.json().get("messages", []):
            texts.append(str(message.get("content") or ""))
            texts += [
                str(c.get("function", {}).get("arguments", "")) for c in message.get("tool_calls") or []
            ]
        return "\n".join(texts)

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        def refuse(status: int, message: str, param: str | None = None) -> tuple[Reply, str | None]:
            return (status, _openai_error(message, status, param), JSON), message

        if method != "POST" or path not in ("/v1/chat/completions", "/openai/v1/chat/completions"):
            return refuse(404, f"Unknown request URL: {method} {path}.")
        if self.api_key is not None:
            presented = headers.get("authorization", "").removeprefix("Bearer ")
            if presented != self.api_key:
                return refuse(401, f"Incorrect API key provided: {presented}.")
        request = self._json_body(body)
        if not isinstance(request, dict) or not isinstance(request.get("model"), str):
            return refuse(400, "you must provide a model parameter", "model")
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            return refuse(400, "'messages' must be a non-empty array", "messages")
        if self.reject_tools and request.get("tools"):
            return refuse(
                400,
                '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
                "tools",
            )
        response_format = request.get("response_format") or {"type": "text"}
        kind = response_format.get("type")
        if kind == "json_schema":
            if self.reject_json_schema:
                return refuse(400, "response_format type 'json_schema' is not supported", "response_format")
            spec = response_format.get("json_schema") or {}
            if not isinstance(spec.get("name"), str) or not isinstance(spec.get("schema"), dict):
                return refuse(400, "json_schema needs a name and a schema", "response_format")
            if spec.get("strict") and (problem := strict_schema_problem(spec["schema"])):
                return refuse(400, f"Invalid schema for response_format '{spec['name']}': {problem}")
        elif kind == "json_object":
            if "json" not in orjson.dumps(messages).decode().lower():
                return refuse(
                    400,
                    "'messages' must contain the word 'json' in some form, to use 'response_format' of "
                    "type 'json_object'.",
                    "messages",
                )
        elif kind != "text":
            return refuse(400, f"Invalid value: '{kind}'.", "response_format.type")
        content = self.reply_for(
            "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        )
        if content is None:
            return refuse(500, "no reply scripted")
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        finish_reason = "stop"
        tool = _required_tool(request)
        scripted = self._json_body(content.encode())
        offered = {
            t.get("function", {}).get("name") for t in request.get("tools") or [] if isinstance(t, dict)
        }
        if isinstance(scripted, dict) and scripted.get(CALL) in offered:
            tool, content = str(scripted[CALL]), orjson.dumps(scripted.get("arguments") or {}).decode()
        if tool is not None and isinstance(self._json_body(content.encode()), dict):
            call = {
                "id": f"call_{next(self._ids)}",
                "type": "function",
                "function": {"name": tool, "arguments": content},
            }
            message, finish_reason = (
                {"role": "assistant", "content": None, "tool_calls": [call]},
                "tool_calls",
            )
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": request["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        }
        if self.usage is not None:
            prompt_tokens, completion_tokens = self.usage
            reply["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        return (200, orjson.dumps(reply), JSON), None
