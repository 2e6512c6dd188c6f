"""The HTTP service Vigil POSTs batches to, and the agent's processing of one batch."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from vigil_sdk import AsyncVigil, VigilError
from vigil_sdk.engines import LlmConfig, analyze

from error_summary.settings import Settings

logger = logging.getLogger("otlp_error_summary")

AGENT_NAME = "otlp-error-summary"


class Agent:
    """Analyzes a batch with Vigil's engines (through the SDK) and sends the result to Vigil."""

    def __init__(self, vigil: AsyncVigil, llm: LlmConfig | None, http: httpx2.AsyncClient) -> None:
        self.vigil = vigil
        self.llm = llm
        self.http = http

    async def process(
        self, records: list[dict[str, Any]], project_id: str, request_id: str
    ) -> dict[str, Any]:
        # The model when one is configured, else the rules; the rules also stand in whenever the
        # model fails, times out or answers invalid JSON, so every batch gets an output.
        summary = await analyze(
            records,
            project_id=project_id,
            request_id=request_id,
            llm=self.llm,
            agent=AGENT_NAME,
            http=self.http,
        )
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


def describe(llm: LlmConfig | None) -> str:
    if llm is None:
        return "rules"
    return f"llm ({llm.provider} {llm.model} at {llm.base_url or 'the default URL'}), rules as fallback"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; without `settings` they are read from the environment when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings.from_env()
        logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        # httpx (the SDK's) and httpx2 (the models') log every request at INFO; this agent logs one
        # line per batch instead.
        for name in ("httpx", "httpx2"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
        async with (
            AsyncVigil(config.vigil_api_key, config.vigil_endpoint) as vigil,
            httpx2.AsyncClient() as http,  # reused by every model call
        ):
            app.state.agent = Agent(vigil, config.llm, http)
            logger.info("ready: engine %s, sending to %s", describe(config.llm), config.vigil_endpoint)
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
            summary = await agent.process(records, x_project_id, x_request_id)
        except VigilError as exc:
            # A 5xx makes Vigil retry the whole batch later.
            logger.error("request %s: output not delivered to Vigil: %s", x_request_id, exc)
            return _error(502, "output_not_delivered", str(exc), retryable=exc.retryable)
        fallback = summary["fallback_reason"]
        logger.info(
            "request %s (project %s): %d records -> %s/%s by %s%s in %.2fs",
            x_request_id,
            x_project_id or "?",
            len(records),
            summary["error_type"],
            summary["severity"],
            summary["engine"],
            f" (fallback: {fallback})" if fallback else "",
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
