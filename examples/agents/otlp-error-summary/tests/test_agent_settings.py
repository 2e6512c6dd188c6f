from __future__ import annotations

import pytest
from error_summary.settings import ConfigError, Settings


def test_defaults_need_only_the_api_key() -> None:
    settings = Settings.from_env({"VIGIL_API_KEY": "k"})

    assert settings == Settings(vigil_api_key="k")
    assert settings.vigil_endpoint == "http://localhost:4318"
    assert settings.llm is None
    assert settings.log_level == "INFO"


def test_an_openai_key_alone_configures_the_model() -> None:
    settings = Settings.from_env({"VIGIL_API_KEY": "k", "OPENAI_API_KEY": "sk-x"})

    assert settings.llm is not None
    assert (settings.llm.provider, settings.llm.model, settings.llm.base_url, settings.llm.timeout_s) == (
        "openai",
        "gpt-4o-mini",
        None,
        30.0,
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

    llm = settings.llm
    assert llm is not None and llm.api_key is not None
    assert llm.api_key.get_secret_value() == "sk-x"
    assert (llm.provider, llm.model, llm.base_url, llm.timeout_s) == (
        "openai",
        "llama3.1",
        "http://ollama:11434/v1",
        12.5,
    )
    assert settings.log_level == "DEBUG"


def test_blank_values_count_as_unset() -> None:
    settings = Settings.from_env({"VIGIL_API_KEY": "k", "OPENAI_API_KEY": "  ", "OPENAI_BASE_URL": ""})

    assert settings.llm is None


def test_only_the_openai_variables_choose_a_model() -> None:
    # The SDK also knows Anthropic's and Gemini's variables; this agent documents OpenAI's only.
    settings = Settings.from_env({"VIGIL_API_KEY": "k", "ANTHROPIC_API_KEY": "sk-ant", "GEMINI_API_KEY": "g"})

    assert settings.llm is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "VIGIL_API_KEY"),
        (
            {"VIGIL_API_KEY": "k", "AI_TIMEOUT_SECONDS": "soon"},
            "AI_TIMEOUT_SECONDS must be a positive number",
        ),
        ({"VIGIL_API_KEY": "k", "AI_TIMEOUT_SECONDS": "0"}, "positive"),
        ({"VIGIL_API_KEY": "k", "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": "ollama:11434"}, "http://"),
    ],
)
def test_bad_configuration_is_explained(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
