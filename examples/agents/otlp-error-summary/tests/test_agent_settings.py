from __future__ import annotations

import pytest
from error_summary.settings import ConfigError, Settings


def test_defaults_need_only_the_api_key() -> None:
    settings = Settings.from_env({"VIGIL_API_KEY": "k"})

    assert settings == Settings(vigil_api_key="k")
    assert settings.vigil_endpoint == "http://localhost:4318"
    assert settings.openai_api_key is None
    assert (settings.openai_model, settings.ai_timeout_seconds, settings.log_level) == (
        "gpt-4o-mini",
        30.0,
        "INFO",
    )


def test_vigil_names_win_over_glassflow_names() -> None:
    env = {
        "VIGIL_API_KEY": "vigil-key",
        "GLASSFLOW_API_KEY": "gf-key",
        "VIGIL_ENDPOINT": "http://vigil:4318",
        "GLASSFLOW_ENDPOINT": "http://glassflow-receiver:4318",
    }

    settings = Settings.from_env(env)

    assert (settings.vigil_api_key, settings.vigil_endpoint) == ("vigil-key", "http://vigil:4318")


def test_glassflow_names_are_accepted() -> None:
    settings = Settings.from_env(
        {"GLASSFLOW_API_KEY": "gf", "GLASSFLOW_ENDPOINT": "http://glassflow-receiver:4318"}
    )

    assert (settings.vigil_api_key, settings.vigil_endpoint) == ("gf", "http://glassflow-receiver:4318")


def test_every_variable_is_read() -> None:
    env = {
        "VIGIL_API_KEY": "k",
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_MODEL": "llama3.1",
        "OPENAI_BASE_URL": "http://ollama:11434/v1/",
        "AI_TIMEOUT_SECONDS": "12.5",
        "LOG_LEVEL": "debug",
    }

    settings = Settings.from_env(env)

    assert settings.openai_api_key == "sk-x"
    assert settings.openai_model == "llama3.1"
    assert settings.openai_base_url == "http://ollama:11434/v1"
    assert settings.ai_timeout_seconds == 12.5
    assert settings.log_level == "DEBUG"


def test_blank_values_count_as_unset() -> None:
    settings = Settings.from_env({"VIGIL_API_KEY": "k", "OPENAI_API_KEY": "  "})

    assert settings.openai_api_key is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "VIGIL_API_KEY"),
        ({"VIGIL_API_KEY": "k", "AI_TIMEOUT_SECONDS": "soon"}, "must be a number"),
        ({"VIGIL_API_KEY": "k", "AI_TIMEOUT_SECONDS": "0"}, "positive"),
    ],
)
def test_bad_configuration_is_explained(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
