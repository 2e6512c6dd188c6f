"""Analysis by any OpenAI-compatible chat-completions server, falling back to another analyzer."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
from vigil_sdk.records import body_text, service_name

from error_summary.summary import Analyzer, Finding, Summary, services_of

logger = logging.getLogger("otlp_error_summary.openai")

MAX_RECORDS_IN_PROMPT = 50
MAX_BODY_CHARS = 1000

SYSTEM_PROMPT = """\
You are an SRE assistant. You receive a batch of OpenTelemetry log records (JSON) from production \
services. Classify the dominant error and explain it for an on-call engineer.

Answer with one JSON object and nothing else, with exactly these fields:
- "summary": one or two sentences: what is failing, where, how often in this batch.
- "severity": "critical" (users are affected or will be soon, act now), "warning" (degraded or \
likely transient, look today) or "informational" (no action needed).
- "error_type": a short CamelCase class such as ConnectionPoolExhausted, Timeout, OutOfMemory, or \
"unknown" if the records do not show a cause.
- "root_cause": the most likely cause as a hypothesis; say "unknown" rather than guess.
- "remediation": concrete next steps.
- "notify": true if a human should be alerted now.
"""


class OpenAIAnalyzer:
    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str,
        timeout: float,
        fallback: Analyzer,
        http: httpx.AsyncClient,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._model = model
        self._timeout = timeout
        self._fallback = fallback
        self._http = http

    async def analyze(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                finding = await self._ask(records)
        # The batch must produce an output whatever the model server does, so every failure
        # (network, HTTP status, malformed or incomplete JSON, timeout) falls back.
        except Exception as exc:
            logger.warning("AI analysis failed, using the fallback analyzer: %r", exc)
            return await self._fallback.analyze(records)
        summary = Summary(
            **finding.model_dump(),
            services=services_of(records),
            records=len(records),
            analyzer="openai",
        )
        return summary.model_dump()

    async def _ask(self, records: list[dict[str, Any]]) -> Finding:
        response = await self._http.post(
            self._url,
            headers={"Authorization": f"Bearer {self._api_key}"},
            json={
                "model": self._model,
                "temperature": 0,
                "response_format": {"type": "json_object"},
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": _prompt(records)},
                ],
            },
            timeout=self._timeout,
        )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        return Finding.model_validate_json(_strip_code_fence(content))


def _prompt(records: list[dict[str, Any]]) -> str:
    shown = [
        {
            "service": service_name(record),
            "severity": record.get("severityText", ""),
            "timestamp": record.get("timestamp", ""),
            "body": body_text(record)[:MAX_BODY_CHARS],
            "attributes": record.get("attributes") or {},
        }
        for record in records[:MAX_RECORDS_IN_PROMPT]
    ]
    note = f" (first {len(shown)} shown)" if len(records) > len(shown) else ""
    return f"{len(records)} records{note}:\n{json.dumps(shown, indent=1, default=str)}"


def _strip_code_fence(content: str) -> str:
    # Some OpenAI-compatible servers wrap JSON in a Markdown fence even in JSON mode.
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text
