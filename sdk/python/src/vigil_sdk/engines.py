"""Vigil's analysis engines, run in an agent's own process: the rules and LLM engines behind Vigil's
built-in `builtin:error-summary` agent, giving the same output.

Needs the `engines` extra, which installs the `vigil` package: from a Vigil checkout,
`pip install . "sdk/python[engines]"` (naming the checkout makes pip take Vigil from it). The rest
of the SDK needs only httpx and never imports this module.

    from vigil_sdk.engines import analyze, llm_config_from_env

    payload = await analyze(records, request_id=request_id, llm=llm_config_from_env())
    await vigil.send_output(payload, request_id)

Without a model configured, the rules engine answers: deterministic, offline, no key needed. With
one, the model answers and the rules stand in whenever it cannot (no answer in time, an error, an
answer that stays invalid after one repair, a spent token budget); `fallback_reason` then says why.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal, get_args

from vigil_sdk.records import body_text

try:
    import httpx2
    from pydantic import SecretStr

    from vigil.agents.builtin.budget import BudgetLimits, MemoryUsageStore, TokenBudget
    from vigil.agents.builtin.evidence import build_evidence
    from vigil.agents.builtin.llm import LlmEngine
    from vigil.agents.builtin.model_registry import LlmConfig, build_model, parse_timeout
    from vigil.agents.builtin.models import Analysis
    from vigil.agents.builtin.rules import RulesEngine
except ImportError as exc:
    raise ImportError(
        "vigil_sdk.engines needs Vigil's engines, from the vigil package, which the SDK's `engines` "
        'extra installs: pip install "vigil-sdk[engines]"; from a Vigil checkout: '
        f'pip install . "sdk/python[engines]" ({type(exc).__name__}: {exc})'
    ) from exc

__all__ = [
    "DEFAULT_AGENT",
    "BudgetLimits",
    "EngineName",
    "LlmConfig",
    "MemoryUsageStore",
    "ProviderName",
    "TokenBudget",
    "analyze",
    "llm_config_from_env",
]

EngineName = Literal["auto", "rules", "llm"]
ProviderName = Literal["openai", "anthropic", "gemini"]

DEFAULT_AGENT = "vigil-sdk"
TIMEOUT_ENV = "AI_TIMEOUT_SECONDS"

# Per provider, in the order `llm_config_from_env` looks for them: key, model and base URL
# variables, and the model used when the model variable is unset.
_PROVIDER_ENV: dict[ProviderName, tuple[str, str, str, str]] = {
    "openai": ("OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_BASE_URL", "gpt-4o-mini"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_MODEL", "ANTHROPIC_BASE_URL", "claude-3-5-haiku-latest"),
    "gemini": ("GEMINI_API_KEY", "GEMINI_MODEL", "GEMINI_BASE_URL", "gemini-2.0-flash"),
}

_RULES = RulesEngine()  # no state beyond its sorted patterns, so one serves every call


async def analyze(
    records: Sequence[Mapping[str, Any]],
    *,
    engine: EngineName = "auto",
    project_id: str = "",
    request_id: str = "",
    llm: LlmConfig | None = None,
    agent: str = DEFAULT_AGENT,
    budget: TokenBudget | None = None,
    http: httpx2.AsyncClient | None = None,
) -> dict[str, Any]:
    """Analyze a batch of flat records (as Vigil POSTs them to agents) and return the payload to
    send back: `{"agent": agent, "summary", "severity", "error_type", "root_cause", "remediation",
    "notify", "confidence", "services", "records", "evidence", "engine", "known", "tokens",
    "fallback_reason"}`, the shape of the built-in agent's outputs.

    `engine`: "rules", "llm" (needs `llm`), or "auto": the model when `llm` is given, else the rules.
    `project_id` and `request_id` label the evidence and key the token budget.
    `budget`: token limits kept across calls; by default each call counts its tokens in a fresh
    in-memory budget without limits. `http`: an `httpx2` client (pydantic-ai's HTTP library) to
    reuse for model calls, not closed here; by default the model's provider opens one and closes it
    when the call ends. Bedrock calls go through boto3 and do not use it.
    """
    if engine not in get_args(EngineName):
        raise ValueError(f"engine must be one of {', '.join(get_args(EngineName))}, got {engine!r}")
    if engine == "llm" and llm is None:
        raise ValueError("engine='llm' needs llm=LlmConfig(...); see llm_config_from_env()")
    evidence = build_evidence(project_id, request_id, [_flat(record) for record in records])
    analysis: Analysis
    if engine == "rules" or llm is None:
        analysis = await _RULES.analyze(evidence)
    else:
        spent = budget if budget is not None else TokenBudget(MemoryUsageStore())
        model = LlmEngine(llm, build_model(llm, http_client=http), spent, _RULES)
        try:
            analysis = await model.analyze(evidence)
        finally:
            await model.aclose()  # closes the HTTP client only if the provider opened it
    return {"agent": agent, **analysis.model_dump(mode="json")}


def llm_config_from_env(
    env: Mapping[str, str] | None = None,
    *,
    providers: Collection[str] = ("openai", "anthropic", "gemini"),
) -> LlmConfig | None:
    """The model the environment (`os.environ` by default) configures, or None for rules only.

    The first provider of `providers` whose API key is set wins, looked for in the order OpenAI,
    Anthropic, Gemini:

    - `OPENAI_API_KEY`, `OPENAI_MODEL` (default gpt-4o-mini), `OPENAI_BASE_URL` (any
      OpenAI-compatible server: vLLM, Ollama, LiteLLM, ...; default OpenAI's API)
    - `ANTHROPIC_API_KEY`, `ANTHROPIC_MODEL` (default claude-3-5-haiku-latest), `ANTHROPIC_BASE_URL`
    - `GEMINI_API_KEY`, `GEMINI_MODEL` (default gemini-2.0-flash), `GEMINI_BASE_URL`

    `AI_TIMEOUT_SECONDS` (default 30) bounds each attempt of a model call. Blank values count as
    unset. Raises ValueError for a timeout that is not a positive number or a base URL that is not
    http(s), whether or not a key is set.
    """
    values = os.environ if env is None else env

    def get(name: str) -> str | None:
        # A blank placeholder (say, an empty Kubernetes Secret) is no key.
        value = values.get(name, "").strip()
        return value or None

    timeout = parse_timeout(get(TIMEOUT_ENV))
    unknown = set(providers) - set(_PROVIDER_ENV)
    if unknown:
        raise ValueError(f"unknown providers: {', '.join(sorted(unknown))}")
    for provider, (key_env, model_env, base_env, default_model) in _PROVIDER_ENV.items():
        key = get(key_env)
        if provider in providers and key is not None:
            return LlmConfig(
                provider=provider,
                model=get(model_env) or default_model,
                base_url=get(base_env),
                api_key=SecretStr(key),
                timeout_s=timeout,
            )
    return None


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """`record` as the evidence builder expects it: a text body and attribute maps. Vigil sends
    those; other senders may send structured bodies (OpenTelemetry allows maps and lists)."""
    flat = dict(record)
    if not isinstance(flat.get("body", ""), str):
        flat["body"] = body_text(record)
    for key in ("resourceAttributes", "attributes"):
        if not isinstance(flat.get(key, {}), Mapping):
            flat[key] = {}
    return flat
