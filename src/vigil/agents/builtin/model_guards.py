"""What every model call of Vigil goes through, as pydantic-ai capabilities: a token budget checked
before each request and charged after it, and one retry policy for every provider. And what a
failed call becomes: an `LlmError`, retryable or permanent, with no API key in its message.

    capabilities = guard_capabilities(config, budget, project_id, incident_key)
    guard = capabilities[0]          # the TokenBudgetGuard: guard.spent is what this run used

A request the budget cannot cover raises `BudgetExhausted` before anything is sent.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import pydantic_core
from pydantic_ai.capabilities import TRANSIENT_MODEL_ERRORS, AbstractCapability, RetryOnModelErrors
from pydantic_ai.exceptions import (
    AgentRunError,
    ModelAPIError,
    ModelHTTPError,
    ModelRequestTimeout,
    ModelTimeoutError,
    UserError,
)
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models import ModelRequestContext
from pydantic_ai.tools import RunContext

from vigil.agents.builtin.budget import TokenBudget
from vigil.agents.builtin.model_registry import LlmConfig

log = logging.getLogger(__name__)

MAX_RETRY_WAIT_S = 30.0
"""A longer Retry-After (a spent daily quota, say) is not worth holding a worker for: fail and fall back."""
FIRST_RETRY_WAIT_S = 0.5
CHARS_PER_TOKEN = 4
"""The usual rule of thumb for English text and JSON; used for estimates and when a server reports no usage."""
_ERROR_DETAIL_CHARS = 300


def estimate_tokens(text: str | bytes) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _request_estimate(request_context: ModelRequestContext, max_output_tokens: int) -> int:
    """What a request may cost at most, rarely short: its messages and tool schemas as JSON, and a
    full-length reply."""
    parameters = request_context.model_request_parameters
    tools = [*parameters.function_tools, *parameters.output_tools]
    messages = ModelMessagesTypeAdapter.dump_json(request_context.messages)
    return estimate_tokens(messages) + estimate_tokens(pydantic_core.to_json(tools)) + max_output_tokens


def _response_estimate(response: ModelResponse) -> int:
    text = "".join(
        part.content if isinstance(part, TextPart) else part.args_as_json_str()
        for part in response.parts
        if isinstance(part, TextPart | ToolCallPart)
    )
    return estimate_tokens(text)


@dataclass(init=False)
class TokenBudgetGuard(AbstractCapability[Any]):
    """Checks the project's and the incident's budgets before each model request and charges each
    response's usage (pydantic-ai's numbers; chars/4 estimates when the server reports none).

    One guard per run: `spent` adds up the tokens its run used, whether the run ends well or not.
    """

    budget: TokenBudget
    project_id: str
    incident_key: str
    max_output_tokens: int
    spent: int

    def __init__(
        self, budget: TokenBudget, project_id: str, incident_key: str, max_output_tokens: int
    ) -> None:
        super().__init__()
        self.budget = budget
        self.project_id = project_id
        self.incident_key = incident_key
        self.max_output_tokens = max_output_tokens
        self.spent = 0
        self._estimated_input = 0

    async def before_model_request(
        self, ctx: RunContext[Any], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        estimate = _request_estimate(request_context, self.max_output_tokens)
        self._estimated_input = estimate - self.max_output_tokens
        await self.budget.check(self.project_id, self.incident_key, estimate)
        return request_context

    async def after_model_request(
        self, ctx: RunContext[Any], *, request_context: ModelRequestContext, response: ModelResponse
    ) -> ModelResponse:
        tokens = response.usage.total_tokens
        if tokens == 0:
            tokens = self._estimated_input + _response_estimate(response)
        self.spent += tokens
        await self.budget.record(self.project_id, self.incident_key, tokens)
        return response


def retrying(config: LlmConfig) -> RetryOnModelErrors[Any]:
    """Retries 429, 5xx, timeouts and connection errors up to `config.max_retries` times, waiting
    what the server asked (Retry-After, retry-after-ms, Google's RetryInfo) or a jittered
    exponential backoff; a server asking for more than MAX_RETRY_WAIT_S is not retried."""
    return RetryOnModelErrors(
        max_attempts=config.max_retries + 1, initial_delay=FIRST_RETRY_WAIT_S, max_delay=MAX_RETRY_WAIT_S
    )


def guard_capabilities(
    config: LlmConfig, budget: TokenBudget, project_id: str, incident_key: str
) -> list[AbstractCapability[Any]]:
    """The budget guard (first) and the retry policy, for one run."""
    return [TokenBudgetGuard(budget, project_id, incident_key, config.max_output_tokens), retrying(config)]


class LlmError(Exception):
    """A model call failed. `retryable`: another attempt later may succeed (429, 5xx, timeouts,
    network); otherwise the request itself or the account is at fault (400, 401, 404, quota)."""

    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None, timeout: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.timeout = timeout


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _detail(exc: ModelAPIError) -> str:
    """The provider's own explanation, wherever its error shape keeps it."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
    if isinstance(exc, ModelHTTPError):
        return "" if body is None else str(body)
    return exc.message


def model_error(exc: Exception, config: LlmConfig) -> LlmError:
    """`exc`, raised by a model call, as an LlmError whose message never holds the API key."""
    name = config.provider
    secret = config.secret
    if isinstance(exc, ModelRequestTimeout | ModelTimeoutError):
        return LlmError(f"{name}: no answer within {config.timeout_s:g}s", retryable=True, timeout=True)
    if isinstance(exc, ModelHTTPError):
        detail = _scrub(_detail(exc), secret)[:_ERROR_DETAIL_CHARS]
        return LlmError(
            f"{name}: HTTP {exc.status_code}" + (f": {detail}" if detail else ""),
            retryable=isinstance(exc, TRANSIENT_MODEL_ERRORS),
            status=exc.status_code,
        )
    if isinstance(exc, ModelAPIError):
        kind = type(exc).__name__
        detail = _scrub(_detail(exc), secret)[:_ERROR_DETAIL_CHARS]
        return LlmError(f"{name}: {kind}: {detail}", retryable=isinstance(exc, TRANSIENT_MODEL_ERRORS))
    if isinstance(exc, AgentRunError | UserError):
        return LlmError(f"{name}: {_scrub(str(exc), secret)[:_ERROR_DETAIL_CHARS]}", retryable=False)
    return LlmError(f"{name}: {type(exc).__name__}: {_scrub(str(exc), secret)}", retryable=False)
