"""Chat models over plain HTTP, each asked for JSON matching a schema: OpenAI-compatible chat
completions (OpenAI, Ollama, vLLM, any base URL), Anthropic Messages and Gemini generateContent.

A call retries 429, 5xx, timeouts and connection errors with exponential backoff, honouring the
server's Retry-After; any other failure raises at once. API keys travel only in headers and are
scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from vigil.outbound import is_retryable_status

log = logging.getLogger(__name__)

TIMEOUT_ENV = "AI_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_S = 30.0
MAX_RETRY_WAIT_S = 30.0
"""A longer Retry-After (a spent daily quota, say) is not worth holding a worker for: fail and fall back."""
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 8.0
_ERROR_DETAIL_CHARS = 300
CHARS_PER_TOKEN = 4
"""The usual rule of thumb for English text and JSON; used only when a server reports no usage."""

OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"


def _timeout_from_env() -> float:
    return parse_timeout(os.environ.get(TIMEOUT_ENV))


def parse_timeout(raw: str | None) -> float:
    """`AI_TIMEOUT_SECONDS` as given: unset or blank means the default; anything else must be a
    positive number of seconds."""
    raw = (raw or "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return value


class LlmConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["openai", "anthropic", "gemini"]
    model: str = Field(min_length=1)
    base_url: str | None = Field(
        default=None,
        description="Another server speaking the provider's protocol, e.g. Ollama at http://localhost:11434/v1.",
    )
    api_key: SecretStr | None = None
    timeout_s: float = Field(default_factory=_timeout_from_env, gt=0, description="Per attempt.")
    max_retries: int = Field(default=2, ge=0, le=10)
    temperature: float = Field(default=0, ge=0, le=2)
    max_output_tokens: int = Field(default=1024, ge=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _key_for_hosted_api(self) -> LlmConfig:
        # Local servers (Ollama, vLLM) take no key; the vendors' own endpoints always do.
        if self.api_key is None and self.base_url is None:
            raise ValueError(f"provider {self.provider!r} needs api_key unless base_url names another server")
        return self


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    estimated: bool = False
    """True when the server reported no usage and the counts are chars/4 estimates."""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class LlmError(Exception):
    """A model call failed. `retryable`: another attempt may succeed (429, 5xx, timeouts, network)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        timeout: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.timeout = timeout
        self.retry_after = retry_after


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    async def complete(self, system: str, user: str, schema: dict[str, Any]) -> Completion: ...

    async def aclose(self) -> None: ...


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def json_instructions(schema: dict[str, Any]) -> str:
    return "Reply with only a JSON object that matches this JSON Schema:\n" + orjson.dumps(schema).decode()


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with local `$ref`s replaced by their definitions: not every provider resolves them."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if not ref.startswith("#/$defs/"):
                    raise ValueError(f"cannot inline $ref {ref!r}")
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_GEMINI_SCHEMA_KEYS = frozenset(
    {"type", "format", "description", "nullable", "enum", "items", "properties", "required"}
    | {"minItems", "maxItems", "minimum", "maximum", "anyOf"}
)


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema in Gemini's `responseSchema` dialect: an OpenAPI subset with upper-case types,
    which refuses keys it does not know (`additionalProperties`, `title`, `$defs`, ...)."""

    def convert(node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key not in _GEMINI_SCHEMA_KEYS:
                continue
            if key == "type":
                out[key] = str(value).upper()
            elif key == "properties":
                out[key] = {name: convert(sub) for name, sub in value.items()}
                out["propertyOrdering"] = list(value)
            elif key == "items":
                out[key] = convert(value)
            elif key == "anyOf":
                out[key] = [convert(sub) for sub in value]
            else:
                out[key] = value
        return out

    return convert(inline_refs(schema))


def _obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: answers are read defensively."""
    return value if isinstance(value, dict) else {}


def _completion(text: str, input_tokens: Any, output_tokens: Any, prompt: str) -> Completion:
    if isinstance(input_tokens, int) and isinstance(output_tokens, int):
        return Completion(text, input_tokens, output_tokens)
    return Completion(text, estimate_tokens(prompt), estimate_tokens(text), estimated=True)


def _retry_after(response: httpx.Response, body: Any) -> float | None:
    """Seconds the server asked us to wait: OpenAI's retry-after-ms, the standard Retry-After
    (seconds or an HTTP date), or Google's RetryInfo in the error body."""
    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                pass
    return None


def _error_detail(body: Any, text: str) -> str:
    """The provider's own explanation, wherever its error shape keeps it."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return text.strip()


class _HttpProvider:
    name = "llm"

    def __init__(self, config: LlmConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._secret = config.api_key.get_secret_value() if config.api_key else None

    async def complete(self, system: str, user: str, schema: dict[str, Any]) -> Completion:
        raise NotImplementedError

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    async def _post(self, url: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        content = orjson.dumps(body)
        headers = {"Content-Type": "application/json", **headers}
        attempt = 0
        while True:
            try:
                return await self._post_once(url, headers, content)
            except LlmError as exc:
                wait = self._retry_wait(exc, attempt)
                if wait is None:
                    raise
                attempt += 1
                log.warning("%s; retry %d of %d in %.2fs", exc, attempt, self.config.max_retries, wait)
                await asyncio.sleep(wait)

    def _retry_wait(self, exc: LlmError, attempt: int) -> float | None:
        if not exc.retryable or attempt >= self.config.max_retries:
            return None
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= MAX_RETRY_WAIT_S else None
        # Jitter spreads the retries of many workers that failed together.
        return min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2.0**attempt) * random.uniform(0.5, 1.0)

    async def _post_once(self, url: str, headers: dict[str, str], content: bytes) -> dict[str, Any]:
        timeout = self.config.timeout_s
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange.
            async with asyncio.timeout(timeout):
                response = await self._client.post(url, content=content, headers=headers, timeout=timeout)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LlmError(
                f"{self.name}: no answer within {timeout:g}s", retryable=True, timeout=True
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise LlmError(f"{self.name}: {self._scrub(str(exc))}", retryable=False) from exc
        except httpx.TransportError as exc:
            message = f"{self.name}: {type(exc).__name__}: {self._scrub(str(exc))}"
            raise LlmError(message, retryable=True) from exc
        try:
            body: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if response.is_success:
            if not isinstance(body, dict):
                raise LlmError(f"{self.name}: the answer is not a JSON object", retryable=False)
            return body
        status = response.status_code
        detail = self._scrub(_error_detail(body, response.text))[:_ERROR_DETAIL_CHARS]
        raise LlmError(
            f"{self.name}: HTTP {status}" + (f": {detail}" if detail else ""),
            retryable=is_retryable_status(status),
            status=status,
            retry_after=_retry_after(response, body),
        )


def _rejects_json_schema(exc: LlmError) -> bool:
    text = exc.message.lower()
    return exc.status in (400, 422) and ("json_schema" in text or "response_format" in text)


class OpenAIProvider(_HttpProvider):
    """Chat completions with `response_format` json_schema (strict); for servers that refuse it,
    json_object with the schema in the system prompt, remembered for the provider's lifetime."""

    name = "openai"

    def __init__(self, config: LlmConfig, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(config, client)
        self._url = f"{config.base_url or OPENAI_BASE_URL}/chat/completions"
        self._headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
        # OpenAI's newer models refuse max_tokens; compatible servers do not all know its successor.
        self._max_tokens_key = "max_completion_tokens" if config.base_url is None else "max_tokens"
        self.structured = True

    async def complete(self, system: str, user: str, schema: dict[str, Any]) -> Completion:
        if self.structured:
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True},
            }
            try:
                return self._parse(await self._call(system, user, response_format), system + user)
            except LlmError as exc:
                if not _rejects_json_schema(exc):
                    raise
                log.warning("%s refuses json_schema; asking for json_object from now on", self._url)
                self.structured = False
        system = f"{system}\n\n{json_instructions(schema)}"
        return self._parse(await self._call(system, user, {"type": "json_object"}), system + user)

    async def _call(self, system: str, user: str, response_format: dict[str, Any]) -> dict[str, Any]:
        body = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": self.config.temperature,
            self._max_tokens_key: self.config.max_output_tokens,
            "response_format": response_format,
        }
        return await self._post(self._url, self._headers, body)

    def _parse(self, data: dict[str, Any], prompt: str) -> Completion:
        choices = data.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        if not isinstance(message, dict):
            raise LlmError(f"{self.name}: the answer has no message", retryable=False)
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            raise LlmError(
                f"{self.name}: the model refused: {refusal[:_ERROR_DETAIL_CHARS]}", retryable=False
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise LlmError(f"{self.name}: the answer has no text", retryable=False)
        usage = _obj(data.get("usage"))
        return _completion(content, usage.get("prompt_tokens"), usage.get("completion_tokens"), prompt)


class AnthropicProvider(_HttpProvider):
    """The Messages API, forced to call one tool whose input_schema is the answer's schema."""

    name = "anthropic"
    tool = "record_answer"

    def __init__(self, config: LlmConfig, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(config, client)
        self._url = f"{config.base_url or ANTHROPIC_BASE_URL}/v1/messages"
        self._headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self._secret:
            self._headers["x-api-key"] = self._secret

    async def complete(self, system: str, user: str, schema: dict[str, Any]) -> Completion:
        body = {
            "model": self.config.model,
            "max_tokens": self.config.max_output_tokens,
            "temperature": self.config.temperature,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "tools": [{"name": self.tool, "description": "Record the answer.", "input_schema": schema}],
            "tool_choice": {"type": "tool", "name": self.tool},
        }
        data = await self._post(self._url, self._headers, body)
        content = data.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        tool_input = next((b.get("input") for b in blocks if b.get("type") == "tool_use"), None)
        if tool_input is not None:
            text = orjson.dumps(tool_input).decode()
        else:
            # A model that answered in prose instead: let the caller validate (and repair) the text.
            text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        if not text:
            raise LlmError(f"{self.name}: the answer has no content", retryable=False)
        usage = _obj(data.get("usage"))
        input_tokens = usage.get("input_tokens")
        if isinstance(input_tokens, int):
            # Cached prompt tokens are billed too, so they count against the budget.
            for cached in ("cache_creation_input_tokens", "cache_read_input_tokens"):
                extra = usage.get(cached)
                input_tokens += extra if isinstance(extra, int) else 0
        return _completion(text, input_tokens, usage.get("output_tokens"), system + user)


class GeminiProvider(_HttpProvider):
    """generateContent with responseMimeType application/json and the schema as responseSchema."""

    name = "gemini"

    def __init__(self, config: LlmConfig, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(config, client)
        model = quote(config.model.removeprefix("models/"), safe="")
        self._url = f"{config.base_url or GEMINI_BASE_URL}/v1beta/models/{model}:generateContent"
        # The key goes in a header, not in ?key=, so no URL that reaches a log or an error carries it.
        self._headers = {"x-goog-api-key": self._secret} if self._secret else {}

    async def complete(self, system: str, user: str, schema: dict[str, Any]) -> Completion:
        body = {
            "systemInstruction": {"parts": [{"text": system}]},
            "contents": [{"role": "user", "parts": [{"text": user}]}],
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": gemini_schema(schema),
                "temperature": self.config.temperature,
                "maxOutputTokens": self.config.max_output_tokens,
            },
        }
        data = await self._post(self._url, self._headers, body)
        candidates = data.get("candidates")
        first = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(first, dict):
            feedback = data.get("promptFeedback")
            reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
            raise LlmError(
                f"{self.name}: no candidate (block reason: {reason or 'none given'})", retryable=False
            )
        parts = _obj(first.get("content")).get("parts")
        parts = parts if isinstance(parts, list) else []
        # Thinking models may return their thoughts as parts of their own; the answer is the rest.
        text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and not p.get("thought"))
        if not text:
            raise LlmError(
                f"{self.name}: the answer has no text (finish reason: {first.get('finishReason')})",
                retryable=False,
            )
        usage = _obj(data.get("usageMetadata"))
        output_tokens = usage.get("candidatesTokenCount")
        if isinstance(output_tokens, int) and isinstance(thoughts := usage.get("thoughtsTokenCount"), int):
            output_tokens += thoughts  # thinking is billed as output
        return _completion(text, usage.get("promptTokenCount"), output_tokens, system + user)


def make_provider(config: LlmConfig, client: httpx.AsyncClient | None = None) -> Provider:
    """The provider `config` names; it closes `client` only if it made the client itself."""
    kinds: dict[str, type[_HttpProvider]] = {
        "openai": OpenAIProvider,
        "anthropic": AnthropicProvider,
        "gemini": GeminiProvider,
    }
    provider: Provider = kinds[config.provider](config, client)
    return provider
