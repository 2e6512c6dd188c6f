"""A Gemini generateContent server whose model answers what the test scripts.

    async with GeminiServer(api_key="gm-test") as server:
        config = LlmConfig(provider="gemini", model="gemini-test", base_url=server.base_url, api_key=...)
        server.reply_json({...})
        server.fail_next(1, 429)        # Google's error body, with a RetryInfo of `retry_delay`

Refuses like Gemini: 404 for another path, 403 without an x-goog-api-key header (this double
does not read ?key=, which callers should not use: URLs end up in logs), 400 for a wrong key, 400 for a body without contents, for responseSchema without responseMimeType
application/json, and for any responseSchema field its OpenAPI subset does not know
(`additionalProperties`, `title`, `$ref`, ...) or any type that is not one of its enum names;
`responseJsonSchema` takes JSON Schema as it is. When functionCallingConfig mode ANY forces a call
of one declared function, a scripted JSON object comes back as a functionCall of it; any other text
as a text part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from tests.doubles._server import RecordedRequest, Reply
from tests.doubles.openai_server import JSON, ModelServer

__all__ = ["GeminiServer", "RecordedRequest", "schema_problem"]

_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$")
_STATUSES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
SCHEMA_FIELDS = frozenset(
    {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems"}
    | {"properties", "required", "minProperties", "maxProperties", "minLength", "maxLength"}
    | {"pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"}
)
TYPES = frozenset({"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})


def schema_problem(schema: Any, where: str = "generation_config.response_schema") -> str | None:
    if not isinstance(schema, dict):
        return f"Invalid value at '{where}': expected an object"
    for key, value in schema.items():
        if key not in SCHEMA_FIELDS:
            return f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
        if key == "type" and value not in TYPES:
            return f"Invalid value at '{where}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"{value}\""
        if key == "properties":
            for name, sub in value.items():
                if problem := schema_problem(sub, f"{where}.properties[{name}].value"):
                    return problem
        if key == "items" and (problem := schema_problem(value, f"{where}.items")):
            return problem
    return None


def _google_error(message: str, status: int, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUSES.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    return orjson.dumps({"error": error})


def _part_text(part: dict[str, Any]) -> str:
    """The text a part shows the model: text, a function call's arguments, a function's response."""
    if "functionCall" in part:
        return orjson.dumps(part["functionCall"].get("args")).decode()
    if "functionResponse" in part:
        return orjson.dumps(part["functionResponse"].get("response")).decode()
    return str(part.get("text", ""))


def _forced_function(request: dict[str, Any]) -> str | None:
    """The function a request forces the model to call: mode ANY with one declared function."""
    mode = ((request.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    names = [
        declaration.get("name")
        for tool in request.get("tools") or []
        for declaration in (tool.get("functionDeclarations") or [])
    ]
    return str(names[0]) if mode == "ANY" and len(names) == 1 else None


class GeminiServer(ModelServer):
    retry_delay = "0s"
    """The RetryInfo delay a scripted 429 carries."""

    def failure_body(self, status: int) -> bytes:
        details = None
        if status == 429:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": self.retry_delay}]
        return _google_error(f"scripted failure {status}", status, details)

    def prompt(self, request: RecordedRequest) -> str:
        body = request.json()
        texts = [str(p.get("text", "")) for p in (body.get("systemInstruction") or {}).get("parts", [])]
        for content in body.get("contents", []):
            texts += [_part_text(p) for p in content.get("parts", [])]
        return "\n".join(texts)

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        def refuse(status: int, message: str) -> tuple[Reply, str | None]:
            return (status, _google_error(message, status), JSON), message

        match = _PATH.match(path)
        if method != "POST" or match is None:
            return refuse(404, f"models path not found: {path}")
        if self.api_key is not None:
            presented = headers.get("x-goog-api-key")
            if not presented:
                return refuse(403, "Method doesn't allow unregistered callers. Please use an API Key.")
            if presented != self.api_key:
                return refuse(400, "API key not valid. Please pass a valid API key.")
        request = self._json_body(body)
        if not isinstance(request, dict) or not request.get("contents"):
            return refuse(400, "* GenerateContentRequest.contents: contents is not specified")
        generation = request.get("generationConfig") or {}
        if "responseSchema" in generation:
            if generation.get("responseMimeType") != "application/json":
                return refuse(400, "response_schema requires response_mime_type application/json")
            if problem := schema_problem(generation["responseSchema"]):
                return refuse(400, problem)
        text = self.next_reply()
        if text is None:
            return refuse(500, "no reply scripted")
        part: dict[str, Any] = {"text": text}
        function = _forced_function(request)
        args = self._json_body(text.encode())
        if function is not None and isinstance(args, dict):
            part = {"functionCall": {"name": function, "args": args}}
        reply: dict[str, Any] = {
            "candidates": [
                {"content": {"parts": [part], "role": "model"}, "finishReason": "STOP", "index": 0}
            ],
            "modelVersion": match["model"],
        }
        if self.usage is not None:
            prompt_tokens, output_tokens = self.usage
            reply["usageMetadata"] = {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": prompt_tokens + output_tokens,
            }
        return (200, orjson.dumps(reply), JSON), None
