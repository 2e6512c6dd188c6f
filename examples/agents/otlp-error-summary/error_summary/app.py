"""The HTTP service Vigil POSTs batches to, and the agent's processing of one batch."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from vigil_sdk import AsyncVigil, VigilError

from error_summary.openai_analyzer import OpenAIAnalyzer
from error_summary.rules import RulesAnalyzer
from error_summary.settings import Settings
from error_summary.summary import Analyzer

logger = logging.getLogger("otlp_error_summary")

AGENT_NAME = "otlp-error-summary"


class Agent:
    def __init__(self, analyzer: Analyzer, vigil: AsyncVigil) -> None:
        self.analyzer = analyzer
        self.vigil = vigil

    async def process(self, records: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
        summary = await self.analyzer.analyze(records)
        await self.vigil.send_output(summary, request_id, idempotency_key=idempotency_key(request_id))
        return summary


def idempotency_key(request_id: str) -> str:
    """Keyed by the batch, so if Vigil re-sends a batch whose output already arrived (say our
    answer was lost), Vigil keeps the first output instead of recording a second one."""
    key = f"{AGENT_NAME}:{request_id}"
    # Vigil accepts keys of up to 200 characters; a longer request id is hashed to fit.
    return (
        key if len(key) <= 200 else f"{AGENT_NAME}:sha256:{hashlib.sha256(request_id.encode()).hexdigest()}"
    )


def make_analyzer(settings: Settings, http: httpx.AsyncClient) -> Analyzer:
    rules = RulesAnalyzer()
    if not settings.openai_api_key:
        return rules
    return OpenAIAnalyzer(
        api_key=settings.openai_api_key,
        model=settings.openai_model,
        base_url=settings.openai_base_url,
        timeout=settings.ai_timeout_seconds,
        fallback=rules,
        http=http,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; without `settings` they are read from the environment when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings.from_env()
        logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        # httpx logs every request at INFO; this agent logs one line per batch instead.
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
        async with (
            AsyncVigil(config.vigil_api_key, config.vigil_endpoint) as vigil,
            httpx.AsyncClient() as http,
        ):
            analyzer = make_analyzer(config, http)
            app.state.agent = Agent(analyzer, vigil)
            logger.info("ready: analyzer=%s, sending to %s", type(analyzer).__name__, config.vigil_endpoint)
            yield

    app = FastAPI(title=AGENT_NAME, lifespan=lifespan)

    @app.post("/process")
    async def process(
        records: list[dict[str, Any]] = Body(),
        x_project_id: str = Header(default=""),
        x_request_id: str = Header(default=""),
        agent: Agent = Depends(_agent),
    ) -> JSONResponse:
        if not x_request_id:
            return _error(400, "missing_request_id", "the X-Request-ID header is required")
        started = time.monotonic()
        try:
            summary = await agent.process(records, x_request_id)
        except VigilError as exc:
            # A 5xx makes Vigil retry the whole batch later.
            logger.error("request %s: output not delivered to Vigil: %s", x_request_id, exc)
            return _error(502, "output_not_delivered", str(exc), retryable=exc.retryable)
        logger.info(
            "request %s (project %s): %d records -> %s/%s in %.2fs",
            x_request_id,
            x_project_id or "?",
            len(records),
            summary["error_type"],
            summary["severity"],
            time.monotonic() - started,
        )
        return JSONResponse({"status": "ok"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _agent(request: Request) -> Agent:
    agent: Agent = request.app.state.agent
    return agent


def _error(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "details": details}, status_code=status)
