"""What every investigation tool shares: its context, its typed result, and the bounds applied
to what it returns (counts before samples, a grep, a line cap and a byte cap)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.agents.builtin.budget import TokenBudget
from vigil.detect.archive import EvidenceArchive
from vigil.errors import UserError
from vigil.investigate.citations import Citation, CitationStore
from vigil.investigate.remote import RecordsWindow
from vigil.pipeline.template_store import TemplateStore
from vigil.pipeline.user_regex import UserRegex, check_pattern
from vigil.settings import InvestigateSettings
from vigil.store.repo import Store

CHARS_PER_TOKEN = 4
"""The estimate the LLM engine's budget uses for text it has not sent yet."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class ToolDisabled(UserError):
    code = "tool_disabled"
    status = 409


class ToolFailed(UserError):
    """The system a tool queries refused or failed; the message says how."""

    code = "tool_failed"
    status = 502


class ToolArgs(BaseModel):
    """Arguments every tool takes; each tool adds its own."""

    model_config = ConfigDict(extra="forbid")

    grep: str | None = Field(
        default=None, min_length=1, max_length=1_000, description="RE2, on each sample's text."
    )
    max_lines: int | None = Field(default=None, ge=0, le=10_000)
    max_bytes: int | None = Field(default=None, ge=0, le=4 * 1024 * 1024)

    @field_validator("grep")
    @classmethod
    def _grep(cls, value: str | None) -> str | None:
        if value is not None:
            check_pattern(value)
        return value


class Sample(BaseModel):
    """One line of a tool's output, with what it cites when it stands for something Vigil keeps."""

    text: str
    citation: Citation | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class ToolResult(BaseModel):
    """Counts first (over everything the tool found), then the samples that fit the bounds."""

    tool: str
    project_id: str
    args: dict[str, Any]
    citation: Citation
    """The call itself: its arguments and this result, stored to be shown again."""
    counts: dict[str, Any] = Field(default_factory=dict)
    total: int = Field(description="Samples found before the grep and the caps.")
    matched: int = Field(description="Samples the grep kept.")
    samples: list[Sample] = Field(default_factory=list)
    truncated: bool = Field(description="Samples were left out by the line or byte cap.")
    tokens: int = Field(
        default=0, description="Estimated tokens of this result, counted against the incident."
    )
    budget_note: str | None = None

    def citations(self) -> list[Citation]:
        return [self.citation, *(s.citation for s in self.samples if s.citation is not None)]


@dataclass
class Found:
    """What a tool gathered, before bounds: counts, samples (most relevant first), and what
    should be stored with each cited sample."""

    counts: dict[str, Any] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Citation id -> body to keep, for record citations."""


@dataclass
class ToolContext:
    store: Store
    settings: InvestigateSettings
    citations: CitationStore
    http: httpx.AsyncClient
    recent: RecordsWindow | None = None
    templates: TemplateStore | None = None
    evidence: EvidenceArchive | None = None
    budget: TokenBudget | None = None
    kubernetes_factory: Callable[[], Any] | None = None
    """Makes the official client's ApiClient; the default reads the settings."""
    _kubernetes: Any = None

    def kubernetes(self) -> Any:
        if self._kubernetes is None:
            from vigil.investigate.tools.kubernetes import client_from_settings

            factory = self.kubernetes_factory or (lambda: client_from_settings(self.settings))
            self._kubernetes = factory()
        return self._kubernetes

    owns_http: bool = False
    """`aclose` closes `http` too (made by `build`)."""

    @classmethod
    def build(
        cls,
        store: Store,
        settings: InvestigateSettings,
        *,
        recent: RecordsWindow | None = None,
        evidence: EvidenceArchive | None = None,
        budget: TokenBudget | None = None,
    ) -> ToolContext:
        """A context with its own HTTP client and citation store; close it with `aclose`."""
        return cls(
            store=store,
            settings=settings,
            citations=CitationStore(store),
            http=httpx.AsyncClient(timeout=settings.timeout_s),
            recent=recent,
            templates=recent.templates if recent is not None else None,
            evidence=evidence,
            budget=budget,
            owns_http=True,
        )

    async def aclose(self) -> None:
        """Close what this context opened; safe twice."""
        client, self._kubernetes = self._kubernetes, None
        if client is not None:
            client.close()
        if self.owns_http:
            await self.http.aclose()


class Tool:
    """A tool: its name, its arguments' model, when it is on, and how it gathers."""

    name: ClassVar[str]
    description: ClassVar[str]
    args: ClassVar[type[ToolArgs]] = ToolArgs

    def enabled(self, ctx: ToolContext) -> bool:
        return True

    async def gather(self, ctx: ToolContext, project_id: str, args: Any) -> Found:
        raise NotImplementedError


def bound(found: Found, grep: str | None, max_lines: int, max_bytes: int) -> tuple[list[Sample], int, bool]:
    """The samples the grep keeps, cut at `max_lines` lines and `max_bytes` bytes of text."""
    pattern = UserRegex(grep) if grep else None
    kept = [s for s in found.samples if pattern is None or pattern.search(s.text)]
    out: list[Sample] = []
    used = 0
    for sample in kept:
        size = len(sample.text.encode()) + len(orjson.dumps(sample.fields))
        if len(out) >= max_lines or used + size > max_bytes:
            return out, len(kept), True
        out.append(sample)
        used += size
    return out, len(kept), False
