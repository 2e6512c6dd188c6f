"""Chat models through pydantic-ai, built from one `LlmConfig`: OpenAI and any OpenAI-compatible
server (Ollama, vLLM, LiteLLM; `base_url`), Anthropic, Gemini, Groq, Mistral and Amazon Bedrock.

This is what every model-using part of Vigil starts from. A tool-using agent is made like this:

    from pydantic_ai import Agent
    from vigil.agents.builtin.model_guards import guard_capabilities, model_error
    from vigil.agents.builtin.model_registry import LlmConfig, build_model, model_settings

    model = build_model(config)                      # a pydantic_ai.models.Model
    agent = Agent(model, output_type=MyAnswer, tools=[...], model_settings=model_settings(config))
    async with model:                                # closes the HTTP client the provider opened
        guards = guard_capabilities(config, budget, project_id, incident_key)   # one set per run
        try:
            result = await agent.run(prompt, capabilities=guards)
        except BudgetExhausted: ...                  # refused before the request was sent
        except Exception as exc:
            error = model_error(exc, config)         # .retryable, .timeout; no key in .message
    spent = guards[0].spent                          # tokens the run used, charged to the budget

`model_settings` (timeout per attempt, output token cap, temperature) turns the SDKs' own retries
off, so that the retrying capability from `guard_capabilities` is the only one and behaves alike
for every provider (429, 5xx, timeouts and connection errors, honouring Retry-After); the token
budget guard checks each request before it is sent and charges what it used. The caller redacts
whatever goes into prompts and tool results.

Keys are passed explicitly, never read from the environment by the SDKs: a key configured for the
vendor never reaches another `base_url`. A server that needs no key gets a placeholder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Literal

import httpx2
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings

ProviderName = Literal["openai", "anthropic", "gemini", "groq", "mistral", "bedrock"]
PROVIDERS: tuple[ProviderName, ...] = ("openai", "anthropic", "gemini", "groq", "mistral", "bedrock")

TIMEOUT_ENV = "AI_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_S = 30.0
NO_KEY = "api-key-not-set"
"""Sent to servers that take no key (Ollama, vLLM): the SDKs refuse to run without one."""


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


def _timeout_from_env() -> float:
    return parse_timeout(os.environ.get(TIMEOUT_ENV))


class LlmConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: ProviderName
    model: str = Field(min_length=1)
    base_url: str | None = Field(
        default=None,
        description="Another server speaking the provider's protocol, e.g. Ollama at http://localhost:11434/v1.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="Bedrock: an API key (bearer token); without one, the AWS credential chain."
    )
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
        # Local servers (Ollama, vLLM) take no key; the vendors' own endpoints always do. Bedrock
        # may sign with the AWS credential chain instead.
        if self.api_key is None and self.base_url is None and self.provider != "bedrock":
            raise ValueError(f"provider {self.provider!r} needs api_key unless base_url names another server")
        return self

    @property
    def secret(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None


def model_settings(config: LlmConfig) -> ModelSettings:
    """Settings for every request to the model `config` names."""
    settings = ModelSettings(
        max_tokens=config.max_output_tokens,
        timeout=config.timeout_s,
        # One retry policy for every provider: the guards' (see module docstring).
        max_retries=0,
    )
    if config.provider != "anthropic":
        # Anthropic's current API version refuses sampling parameters; pydantic-ai would drop it
        # with a warning on every request.
        settings["temperature"] = config.temperature
    return settings


ModelBuilder = Callable[[LlmConfig, httpx2.AsyncClient | None], Model]


def _openai(config: LlmConfig, http: httpx2.AsyncClient | None) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.profiles import ModelProfile, merge_profile
    from pydantic_ai.profiles.openai import OpenAIModelProfile
    from pydantic_ai.providers.openai import OpenAIProvider

    def compatible(base: ModelProfile) -> ModelProfile:
        # OpenAI's newer models refuse max_tokens, but not every compatible server knows its
        # successor (Ollama ignores it): another server gets max_tokens.
        return merge_profile(base, OpenAIModelProfile(openai_chat_supports_max_completion_tokens=False))

    provider = OpenAIProvider(base_url=config.base_url, api_key=config.secret or NO_KEY, http_client=http)
    return OpenAIChatModel(config.model, provider=provider, profile=compatible if config.base_url else None)


def _anthropic(config: LlmConfig, http: httpx2.AsyncClient | None) -> Model:
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(base_url=config.base_url, api_key=config.secret or NO_KEY, http_client=http)
    return AnthropicModel(config.model, provider=provider)


def _gemini(config: LlmConfig, http: httpx2.AsyncClient | None) -> Model:
    from pydantic_ai.models.google import GoogleModel
    from pydantic_ai.providers.google import GoogleProvider

    provider = GoogleProvider(base_url=config.base_url, api_key=config.secret or NO_KEY, http_client=http)
    return GoogleModel(config.model.removeprefix("models/"), provider=provider)


def _groq(config: LlmConfig, http: httpx2.AsyncClient | None) -> Model:
    from pydantic_ai.models.groq import GroqModel
    from pydantic_ai.providers.groq import GroqProvider

    # The Groq SDK takes only httpx (not httpx2) clients, so it always has its own.
    provider = GroqProvider(base_url=config.base_url, api_key=config.secret or NO_KEY)
    return GroqModel(config.model, provider=provider)


def _mistral(config: LlmConfig, http: httpx2.AsyncClient | None) -> Model:
    from pydantic_ai.models.mistral import MistralModel
    from pydantic_ai.providers.mistral import MistralProvider

    provider = MistralProvider(base_url=config.base_url, api_key=config.secret or NO_KEY, http_client=http)
    return MistralModel(config.model, provider=provider)


def _bedrock(config: LlmConfig, http: httpx2.AsyncClient | None) -> Model:
    # boto3 has its own HTTP stack, so `http` has no use here; the region comes from AWS_REGION or
    # AWS_DEFAULT_REGION, as for any AWS client.
    import boto3
    from botocore.config import Config
    from pydantic_ai.models.bedrock import BedrockConverseModel
    from pydantic_ai.providers.bedrock import BedrockProvider

    read, connect = config.timeout_s, min(config.timeout_s, 10.0)
    if config.secret is None:
        # Signed by the AWS credential chain, on a client whose own retries are off: Vigil's apply.
        no_retries = Config(read_timeout=read, connect_timeout=connect, retries={"total_max_attempts": 1})
        client = boto3.client("bedrock-runtime", endpoint_url=config.base_url, config=no_retries)
        provider = BedrockProvider(bedrock_client=client)
    else:
        # A Bedrock API key needs pydantic-ai's bearer-token session; botocore's retries stay on.
        provider = BedrockProvider(
            api_key=config.secret,
            base_url=config.base_url,
            aws_read_timeout=read,
            aws_connect_timeout=connect,
        )
    return BedrockConverseModel(config.model, provider=provider)


MODEL_BUILDERS: dict[ProviderName, ModelBuilder] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "groq": _groq,
    "mistral": _mistral,
    "bedrock": _bedrock,
}


def build_model(config: LlmConfig, *, http_client: httpx2.AsyncClient | None = None) -> Model:
    """The pydantic-ai model `config` names. With `http_client`, requests go through it and it is
    never closed here; without, the provider opens its own, closed on leaving `async with model`."""
    return MODEL_BUILDERS[config.provider](config, http_client)
