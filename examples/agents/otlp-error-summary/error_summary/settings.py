"""Configuration from environment variables; GlassFlow's variable names are accepted as fallbacks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    vigil_api_key: str
    vigil_endpoint: str = "http://localhost:4318"
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str = "https://api.openai.com/v1"
    ai_timeout_seconds: float = 30.0
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
        timeout_text = get("AI_TIMEOUT_SECONDS") or str(cls.ai_timeout_seconds)
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise ConfigError(f"AI_TIMEOUT_SECONDS must be a number, got {timeout_text!r}") from None
        if timeout <= 0:
            raise ConfigError("AI_TIMEOUT_SECONDS must be positive")
        return cls(
            vigil_api_key=api_key,
            vigil_endpoint=get("VIGIL_ENDPOINT", "GLASSFLOW_ENDPOINT") or cls.vigil_endpoint,
            openai_api_key=get("OPENAI_API_KEY"),
            openai_model=get("OPENAI_MODEL") or cls.openai_model,
            openai_base_url=(get("OPENAI_BASE_URL") or cls.openai_base_url).rstrip("/"),
            ai_timeout_seconds=timeout,
            log_level=(get("LOG_LEVEL") or cls.log_level).upper(),
        )
