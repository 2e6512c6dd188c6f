"""The llm engine as the runtime builds it from settings: the model from the registry, the budget
in the database, the rules as fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.agents.test_llm_engine import FakeRules, answer, make_evidence
from tests.doubles.anthropic_server import AnthropicServer
from vigil.agents.builtin.factory import build_llm_engine
from vigil.agents.builtin.llm import FallbackAnalysis
from vigil.settings import LlmSettings
from vigil.store.db import create_engine, upgrade
from vigil.store.repo import Store
from vigil.store.sealing import SecretBox, generate_key

KEY = "sk-ant-factory-5e1b"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    await upgrade(url)
    store = Store(create_engine(url), SecretBox([generate_key()]))
    yield store
    await store.close()


async def test_settings_build_an_engine_whose_usage_is_kept_in_the_database(store: Store) -> None:
    async with AnthropicServer(api_key=KEY) as server:
        settings = LlmSettings.model_validate(
            {
                "provider": "anthropic",
                "model": "claude-test",
                "base_url": server.base_url,
                "api_key": KEY,
                "timeout_s": 5,
                "tokens_per_day": 7_000,
            }
        )
        engine = build_llm_engine(settings, store, FakeRules())
        server.usage = (5_000, 1_000)
        server.reply_json(answer(), answer())
        first = await engine.analyze(make_evidence())
        second = await engine.analyze(make_evidence(request_id="req-2"))
        await engine.aclose()
        await engine.aclose()  # safe twice

    assert (first.engine, first.tokens) == ("llm", 6_000)
    assert isinstance(second, FallbackAnalysis)
    assert second.fallback_reason == "budget_exhausted"  # 1,000 left: less than a full-length reply
    assert len(server.requests) == 1
    usage = await engine.budget.usage("proj-1")
    assert (usage["tokens_today"], usage["remaining_today"]) == (6_000, 1_000)
