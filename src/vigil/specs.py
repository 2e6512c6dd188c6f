"""Wire formats of what users configure: pipelines (filter, batch, agent) and sinks.

The same models validate the REST API, the CLI and `vigil.yaml`, so an error reads the same
wherever the configuration came from.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    UrlConstraints,
    field_serializer,
    field_validator,
    model_validator,
)

from vigil.pipeline.redact import RedactionSpec
from vigil.pipeline.user_regex import check_pattern
from vigil.severity import parse_severity

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Pipeline names become NATS subject tokens and consumer names: no dots, wildcards or spaces."""

LABEL_MAX = 200
"""Project, key and sink names: shown in tables and logs, never a document."""
URL_MAX = 2048
TEXT_MAX = 1000
"""A value to match (equals, in, contains)."""
KEY_MAX = 256
"""An attribute key or a service name."""


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not contain control characters or line breaks")
    return value


Label = Annotated[str, Field(min_length=1, max_length=LABEL_MAX), AfterValidator(_printable)]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
Key = Annotated[str, Field(min_length=1, max_length=KEY_MAX)]
Scalar = Text | int | float | bool
HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")]
"""An HTTP field name (RFC 9110 token)."""
HEADER_VALUE_MAX = 4096
MAX_HEADERS = 50
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "host", "connection", "te", "upgrade"})


def check_headers(headers: dict[str, str]) -> None:
    """Extra request headers must not change how the request is framed or split into two."""
    for name, value in headers.items():
        if name.lower() in FRAMING_HEADERS:
            raise ValueError(f"header {name!r} is set by Vigil and cannot be configured")
        if len(value) > HEADER_VALUE_MAX:
            raise ValueError(f"header {name!r} is longer than {HEADER_VALUE_MAX} characters")
        if any(ch in value for ch in "\r\n\0"):
            raise ValueError(f"header {name!r} holds a line break or NUL")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueMatch(_Strict):
    """How one attribute is matched: `equals` (string forms compared), `regex`, `in`, or `exists`."""

    equals: Scalar | None = None
    regex: str | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", max_length=1000)
    exists: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_value_means_equals(cls, data: Any) -> Any:
        if isinstance(data, str | int | float | bool):
            return {"equals": data}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueMatch:
        given = [n for n in ("equals", "regex", "in_", "exists") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, regex, in, exists")
        if self.regex is not None:
            check_pattern(self.regex)
        return self


class BodyMatch(_Strict):
    contains: Text | None = None
    regex: str | None = None
    ignore_case: bool = False

    @model_validator(mode="before")
    @classmethod
    def _plain_string_means_contains(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"contains": data}
        return data

    @model_validator(mode="after")
    def _one_of(self) -> BodyMatch:
        if (self.contains is None) == (self.regex is None):
            raise ValueError("give exactly one of contains, regex")
        if self.regex is not None:
            check_pattern(self.regex, ignore_case=self.ignore_case)
        return self


class FilterSpec(_Strict):
    """Which records a pipeline takes. Every condition given must hold; an empty filter takes all."""

    kinds: list[Literal["log", "incident"]] = Field(
        default=["log"],
        description="What the pipeline takes: log records, the detector's incident events, or both.",
    )
    min_severity: int | None = Field(default=None, description="Name (ERROR) or number (1-24).")
    services: list[Key] | None = Field(
        default=None, max_length=1000, description="service.name must be one of these."
    )
    attributes: dict[Key, ValueMatch] = Field(default_factory=dict, max_length=100)
    resource_attributes: dict[Key, ValueMatch] = Field(default_factory=dict, max_length=100)
    body: BodyMatch | None = None

    @field_validator("min_severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> int | None:
        if value is None:
            return None
        return parse_severity(value)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("kinds must not be empty: give log, incident or both")
        return sorted(set(value), key=value.index)

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("services must not be empty; omit it to take every service")
        return value


class BatchSpec(_Strict):
    max_records: int = Field(default=10, ge=1, le=1000)
    max_wait_ms: int = Field(default=500, ge=1, le=600_000)
    max_bytes: int = Field(
        default=1024 * 1024,
        ge=4096,
        le=8 * 1024 * 1024,
        description="Cap on a batch's JSON size; the bus's message limit caps it too. A record "
        "larger alone is cut, with a vigil.truncated_bytes attribute.",
    )


class RetrySpec(_Strict):
    max_attempts: int = Field(default=10, ge=1, le=1000)
    initial_backoff_s: float = Field(default=0.5, gt=0, le=3600)
    max_backoff_s: float = Field(default=60.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _ordered(self) -> RetrySpec:
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("max_backoff_s must be at least initial_backoff_s")
        return self


BUILTIN_AGENTS = ("error-summary",)


class AgentSpec(_Strict):
    endpoint: str = Field(
        max_length=URL_MAX, description="http(s) URL the batches are POSTed to, or builtin:<name>."
    )
    engine: Literal["rules", "llm"] = Field(
        default="rules", description="Built-in agents only: offline rules, or the configured LLM."
    )
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    concurrency: int = Field(default=8, ge=1, le=256, description="Batches in flight at once.")
    headers: dict[HeaderName, SecretStr] = Field(default_factory=dict, max_length=MAX_HEADERS)
    retry: RetrySpec = Field(default_factory=RetrySpec)

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        check_headers({name: value.get_secret_value() for name, value in headers.items()})
        return headers

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value.startswith(("http://", "https://")):
            AnyHttpUrl(value)
            return value
        if value.startswith("builtin:"):
            if value.removeprefix("builtin:") not in BUILTIN_AGENTS:
                raise ValueError(
                    f"unknown built-in agent {value!r}; known: {', '.join('builtin:' + n for n in BUILTIN_AGENTS)}"
                )
            return value
        raise ValueError("endpoint must be an http:// or https:// URL, or builtin:<name>")

    @field_serializer("headers", when_used="json")
    def _hide_headers(self, headers: dict[str, SecretStr]) -> dict[str, str]:
        return {k: "**********" for k in headers}


class DedupeSpec(_Strict):
    """Fold repeats of a (service, template) within a window into counts."""

    window_s: float = Field(default=300.0, gt=0, le=86_400)
    rollup_steps: list[int] = Field(default_factory=lambda: [10, 100, 1_000, 10_000, 100_000], max_length=20)
    max_samples: int = Field(default=3, ge=0, le=10)
    max_groups: int = Field(default=10_000, ge=1, le=1_000_000)

    @field_validator("rollup_steps")
    @classmethod
    def _increasing(cls, steps: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(steps)) or (steps and steps[0] < 2):
            raise ValueError("rollup_steps must be increasing counts of at least 2")
        return steps


class PipelineSpec(_Strict):
    filter: FilterSpec = Field(default_factory=FilterSpec)
    batch: BatchSpec = Field(default_factory=BatchSpec)
    agent: AgentSpec
    dedupe: DedupeSpec | None = Field(default=None, description="Off unless given: agents see every record.")
    redact: RedactionSpec = Field(
        default_factory=RedactionSpec, description="Applied before records leave Vigil; on by default."
    )
    enabled: bool = True


class WebhookSinkSpec(_Strict):
    type: Literal["webhook"]
    name: Label | None = None
    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=URL_MAX)]
    secret: SecretStr | None = Field(
        default=None, min_length=1, max_length=1024, description="Signs each delivery (HMAC-SHA256)."
    )
    headers: dict[HeaderName, str] = Field(default_factory=dict, max_length=MAX_HEADERS)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    retry: RetrySpec = Field(default_factory=RetrySpec)

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        check_headers(headers)
        return headers


class SlackSinkSpec(_Strict):
    type: Literal["slack"]
    name: Label | None = None
    webhook_url: SecretStr = Field(description="Slack incoming-webhook URL (a secret).")
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    retry: RetrySpec = Field(default_factory=RetrySpec)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) > URL_MAX:
            raise ValueError(f"URL should have at most {URL_MAX} characters")
        AnyHttpUrl(value.get_secret_value())
        return value


SinkSpec = Annotated[WebhookSinkSpec | SlackSinkSpec, Field(discriminator="type")]


class ProjectSpec(_Strict):
    name: Label
