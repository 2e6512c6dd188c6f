"""Builds the LLM engine from settings: the model, budget kept in the database, rules as fallback."""

from __future__ import annotations

from vigil.agents.builtin.budget import BudgetLimits, SqlUsageStore, TokenBudget
from vigil.agents.builtin.engine import Engine
from vigil.agents.builtin.llm import LlmEngine
from vigil.agents.builtin.model_registry import LlmConfig, build_model
from vigil.learning.examples import CaseExamples
from vigil.settings import LlmSettings
from vigil.store.repo import Store


class ConfiguredLlm(LlmEngine):
    """An LlmEngine that also exposes its budget, so the API can show usage."""

    budget: TokenBudget


def build_llm_engine(settings: LlmSettings, store: Store, fallback: Engine) -> ConfiguredLlm:
    assert settings.provider is not None and settings.model is not None
    values: dict[str, object] = {
        "provider": settings.provider,
        "model": settings.model,
        "base_url": settings.base_url,
        "api_key": settings.api_key,
    }
    if settings.timeout_s is not None:
        values["timeout_s"] = settings.timeout_s
    config = LlmConfig.model_validate(values)
    budget = TokenBudget(
        SqlUsageStore(store.engine),
        BudgetLimits(
            tokens_per_day=settings.tokens_per_day, tokens_per_incident=settings.tokens_per_incident
        ),
    )
    engine = ConfiguredLlm(config, build_model(config), budget, fallback, examples=CaseExamples(store))
    engine.budget = budget
    return engine
