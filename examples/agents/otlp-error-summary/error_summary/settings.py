"""Configuration from environment variables; GlassFlow's variable names are accepted as fallbacks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from vigil_sdk.engines import LlmConfig, llm_config_from_env


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    vigil_api_key: str
    vigil_endpoint: str = "http://localhost:4318"
    llm: LlmConfig | None = None
    """The model to ask; None: the rules engine answers alone."""
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        def get(*names: str) -> str | None:
            # Empty counts as unset, so a blank placeholder in a Secret does not become a key.
            for name in names:
                value = env.get(name, "").strip()
                if value:
                    return value
            return None

        api_key = get("VIGIL_API_KEY", "GLASSFLOW_API_KEY")
        if api_key is None:
            raise ConfigError("set VIGIL_API_KEY (or GLASSFLOW_API_KEY) to the project's API key")
        try:
            # OPENAI_API_KEY, OPENAI_MODEL, OPENAI_BASE_URL and AI_TIMEOUT_SECONDS, read by the SDK.
            llm = llm_config_from_env(env, providers=("openai",))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return cls(
            vigil_api_key=api_key,
            vigil_endpoint=get("VIGIL_ENDPOINT", "GLASSFLOW_ENDPOINT") or cls.vigil_endpoint,
            llm=llm,
            log_level=(get("LOG_LEVEL") or cls.log_level).upper(),
        )
