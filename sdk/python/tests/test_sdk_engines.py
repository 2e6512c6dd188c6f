"""`vigil_sdk.engines` against Vigil's own engines and the local OpenAI and Anthropic doubles."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr
from vigil_sdk.engines import (
    BudgetLimits,
    LlmConfig,
    MemoryUsageStore,
    TokenBudget,
    analyze,
    llm_config_from_env,
)

from tests.doubles.anthropic_server import AnthropicServer
from tests.doubles.openai_server import OpenAIServer
from vigil.agents.builtin.evidence import build_evidence
from vigil.agents.builtin.rules import RulesEngine

KEY = "sk-test-engines-3c9e1a"
POOL = "Connection refused: database pool exhausted"
WAIT = "Timeout waiting for DB connection after 30s"
PAYLOAD_KEYS = {
    "agent",
    "summary",
    "severity",
    "error_type",
    "root_cause",
    "remediation",
    "notify",
    "confidence",
    "services",
    "records",
    "evidence",
    "engine",
    "runbook_id",
    "known",
    "tokens",
    "fallback_reason",
}


def record(body: Any, service: str = "payment-service", severity: int = 17) -> dict[str, Any]:
    return {
        "resourceAttributes": {"service.name": service},
        "severityNumber": severity,
        "severityText": "ERROR",
        "body": body,
        "attributes": {"db.system": "postgresql"},
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": "00f067aa0ba902b7",
        "timestamp": "2024-01-15T10:30:00Z",
    }


BATCH = [record(POOL), record(WAIT)]


def model_answer(**overrides: Any) -> dict[str, Any]:
    return {
        "summary": "payment-service cannot get database connections.",
        "severity": "critical",
        "error_type": "SlowQueries",
        "root_cause": "Slow queries hold every pooled connection.",
        "remediation": ["Find the slow queries.", "Then size the pool."],
        "notify": True,
        "confidence": 0.7,
        "citations": [{"template_id": POOL, "reason": "The pool is exhausted."}],
        **overrides,
    }


def openai_config(server: OpenAIServer, **overrides: Any) -> LlmConfig:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-test",
        "base_url": server.api_base,
        "api_key": SecretStr(KEY),
        "timeout_s": 5.0,
        **overrides,
    }
    return LlmConfig.model_validate(values)


# --- rules -------------------------------------------------------------------------------------


async def test_without_a_model_the_rules_answer_as_the_builtin_agent_does() -> None:
    payload = await analyze(BATCH, project_id="proj-1", request_id="req-1", agent="my-agent")

    expected = RulesEngine().analyze_sync(build_evidence("proj-1", "req-1", BATCH))
    assert payload == {"agent": "my-agent", **expected.model_dump(mode="json")}
    assert set(payload) == PAYLOAD_KEYS
    assert (payload["engine"], payload["error_type"], payload["severity"]) == (
        "rules",
        "ConnectionPoolExhausted",
        "critical",
    )
    assert payload["notify"] is True
    assert payload["fallback_reason"] is None
    assert {c["template"] for c in payload["evidence"]} == {POOL, WAIT}


async def test_the_default_agent_name() -> None:
    assert (await analyze(BATCH))["agent"] == "vigil-sdk"


async def test_structured_bodies_and_malformed_attributes_are_read() -> None:
    odd = {**record({"msg": "write failed", "err": "ENOSPC"}), "attributes": None, "resourceAttributes": "x"}

    payload = await analyze([odd])

    assert payload["error_type"] == "DiskFull"
    assert payload["services"] == ["unknown"]


async def test_an_empty_batch_is_unknown_and_quiet() -> None:
    payload = await analyze([])

    assert (payload["error_type"], payload["records"], payload["notify"], payload["known"]) == (
        "Unknown",
        0,
        False,
        False,
    )


async def test_engine_rules_ignores_a_configured_model() -> None:
    async with OpenAIServer(api_key=KEY) as server:
        payload = await analyze(BATCH, engine="rules", llm=openai_config(server))

        assert server.requests == []
    assert payload["engine"] == "rules"


async def test_bad_engine_choices_are_refused() -> None:
    with pytest.raises(ValueError, match="needs llm="):
        await analyze(BATCH, engine="llm")
    with pytest.raises(ValueError, match="engine must be one of"):
        await analyze(BATCH, engine="magic")  # type: ignore[arg-type]


# --- llm ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["auto", "llm"])
async def test_with_a_model_it_answers(engine: Any) -> None:
    async with OpenAIServer(api_key=KEY) as server:
        server.reply_json(model_answer())
        payload = await analyze(
            BATCH, engine=engine, project_id="proj-1", request_id="req-1", llm=openai_config(server)
        )

    assert set(payload) == PAYLOAD_KEYS
    assert payload["engine"] == "llm"
    assert payload["error_type"] == "SlowQueries"
    assert payload["remediation"] == ["Find the slow queries.", "Then size the pool."]
    assert payload["tokens"] == 150  # the double's usage: 100 in, 50 out
    assert payload["fallback_reason"] is None
    assert payload["services"] == ["payment-service"]
    assert payload["records"] == 2
    assert payload["evidence"] == [
        {
            "kind": "template",
            "template_id": POOL,
            "template": POOL,
            "service": "payment-service",
            "count": 1,
            "reason": "The pool is exhausted.",
        }
    ]
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.header("authorization") == f"Bearer {KEY}"
    assert request.json()["model"] == "gpt-test"
    assert request.json()["tool_choice"] == "required"  # the answer comes as a call of its tool
    assert WAIT in server.prompt(request)


async def test_a_malformed_answer_is_repaired_once_then_the_rules_stand_in() -> None:
    async with OpenAIServer(api_key=KEY) as server:
        server.reply_text('{"summary": ', "The database pool looks exhausted.")
        payload = await analyze(BATCH, llm=openai_config(server))

        assert len(server.requests) == 2
        assert "EOF while parsing" in server.prompt(server.requests[1])  # why it was rejected
    assert payload["engine"] == "rules"
    assert payload["error_type"] == "ConnectionPoolExhausted"
    assert payload["fallback_reason"] == "invalid_output"
    assert payload["tokens"] == 300  # both calls were paid for


async def test_an_answer_that_breaks_the_schema_is_repaired() -> None:
    async with OpenAIServer(api_key=KEY) as server:
        server.reply_json(model_answer(severity="sev1"), model_answer())
        payload = await analyze(BATCH, llm=openai_config(server))

    assert (payload["engine"], payload["error_type"], payload["fallback_reason"]) == (
        "llm",
        "SlowQueries",
        None,
    )


async def test_a_slow_model_falls_back_to_the_rules_in_time() -> None:
    async with OpenAIServer(api_key=KEY) as server:
        server.delay_next(1, 3.0)
        server.reply_json(model_answer())
        started = time.monotonic()
        payload = await analyze(BATCH, llm=openai_config(server, timeout_s=0.3, max_retries=0))
        elapsed = time.monotonic() - started

    assert (payload["engine"], payload["fallback_reason"]) == ("rules", "timeout")
    assert payload["error_type"] == "ConnectionPoolExhausted"
    assert elapsed < 2.0


async def test_a_provider_error_falls_back_to_the_rules() -> None:
    async with OpenAIServer(api_key="another-key") as server:
        payload = await analyze(BATCH, llm=openai_config(server))

    assert (payload["engine"], payload["fallback_reason"]) == ("rules", "provider_error")


async def test_a_spent_budget_makes_no_call() -> None:
    budget = TokenBudget(MemoryUsageStore(), BudgetLimits(tokens_per_day=10))
    async with OpenAIServer(api_key=KEY) as server:
        payload = await analyze(BATCH, project_id="proj-1", llm=openai_config(server), budget=budget)

        assert server.requests == []
    assert (payload["engine"], payload["fallback_reason"]) == ("rules", "budget_exhausted")


async def test_a_budget_given_counts_across_calls() -> None:
    budget = TokenBudget(MemoryUsageStore(), BudgetLimits(tokens_per_day=100_000))
    async with OpenAIServer(api_key=KEY) as server:
        server.reply_json(model_answer(), model_answer())
        for _ in range(2):
            await analyze(BATCH, project_id="proj-1", llm=openai_config(server), budget=budget)

    assert (await budget.usage("proj-1"))["tokens_today"] == 300


async def test_a_client_given_is_used_and_left_open() -> None:
    sent: list[str] = []

    async def count(request: httpx2.Request) -> None:
        sent.append(str(request.url))

    async with (
        OpenAIServer(api_key=KEY) as server,
        httpx2.AsyncClient(event_hooks={"request": [count]}) as http,
    ):
        server.reply_json(model_answer())
        payload = await analyze(BATCH, llm=openai_config(server), http=http)

        assert payload["engine"] == "llm"
        assert sent == [f"{server.api_base}/chat/completions"]
        assert not http.is_closed


async def test_other_providers_from_the_environment() -> None:
    async with AnthropicServer(api_key="sk-ant-test") as server:
        server.reply_json(model_answer())
        config = llm_config_from_env(
            {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": server.base_url}
        )
        payload = await analyze(BATCH, llm=config)

        assert server.requests[0].json()["model"] == "claude-3-5-haiku-latest"
    assert (payload["engine"], payload["error_type"]) == ("llm", "SlowQueries")


# --- configuration from the environment --------------------------------------------------------


def test_no_key_means_no_model() -> None:
    assert llm_config_from_env({}) is None
    assert llm_config_from_env({"OPENAI_API_KEY": "  ", "OPENAI_MODEL": "gpt-x"}) is None


def test_openai_variables() -> None:
    config = llm_config_from_env(
        {
            "OPENAI_API_KEY": "sk-x",
            "OPENAI_MODEL": "llama3.1",
            "OPENAI_BASE_URL": "http://ollama:11434/v1/",
            "AI_TIMEOUT_SECONDS": "12.5",
        }
    )

    assert config is not None
    assert (config.provider, config.model, config.base_url, config.timeout_s) == (
        "openai",
        "llama3.1",
        "http://ollama:11434/v1",
        12.5,
    )
    assert config.api_key is not None and config.api_key.get_secret_value() == "sk-x"


def test_openai_defaults() -> None:
    config = llm_config_from_env({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": ""})

    assert config is not None
    assert (config.model, config.base_url, config.timeout_s) == ("gpt-4o-mini", None, 30.0)


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("AI_TIMEOUT_SECONDS", "7")

    config = llm_config_from_env()

    assert config is not None and (config.provider, config.timeout_s) == ("openai", 7.0)


def test_providers_are_tried_in_order_and_can_be_limited() -> None:
    env = {"GEMINI_API_KEY": "g", "GEMINI_MODEL": "gemini-x", "ANTHROPIC_API_KEY": "a"}

    first = llm_config_from_env(env)
    gemini = llm_config_from_env(env, providers=("gemini",))

    assert first is not None and (first.provider, first.model) == ("anthropic", "claude-3-5-haiku-latest")
    assert gemini is not None and (gemini.provider, gemini.model) == ("gemini", "gemini-x")
    assert llm_config_from_env(env, providers=("openai",)) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AI_TIMEOUT_SECONDS": "soon"}, "positive number of seconds, got 'soon'"),
        ({"AI_TIMEOUT_SECONDS": "0"}, "positive number"),
        ({"AI_TIMEOUT_SECONDS": "nan"}, "positive number"),
        ({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "ollama:11434"}, "http:// or https://"),
    ],
)
def test_bad_configuration_is_explained(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        llm_config_from_env(env)


def test_unknown_providers_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown providers: mistral"):
        llm_config_from_env({}, providers=("openai", "mistral"))


# --- packaging ---------------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_the_core_sdk_does_not_import_vigil() -> None:
    result = _python(
        """
        import sys
        import vigil_sdk, vigil_sdk.records
        print(sorted(m for m in sys.modules if m == "vigil" or m.startswith("vigil.")))
        """
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_vigil_the_engines_say_how_to_install_them() -> None:
    result = _python(
        """
        import sys

        class NoVigil:
            def find_spec(self, name, path=None, target=None):
                if name == "vigil" or name.startswith("vigil."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoVigil())
        import vigil_sdk
        vigil_sdk.Vigil  # the core SDK works without vigil
        try:
            import vigil_sdk.engines
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("imported")
        """
    )

    assert result.returncode == 0, result.stderr
    assert 'pip install "vigil-sdk[engines]"' in result.stdout
    assert "No module named 'vigil" in result.stdout
