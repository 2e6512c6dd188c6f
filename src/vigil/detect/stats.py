"""What a closed window reports: per-endpoint request statistics and the queries under them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, computed_field

from vigil.detect.facts import RequestFact

__all__ = ["NO_ENDPOINT", "OTHER", "ClosedWindow", "QueryStats", "WindowStats"]

OTHER = "(other)"  # endpoints or statements pooled once a window's cap is reached
NO_ENDPOINT = "*"  # queries whose trace has no server request in this service


class QueryStats(BaseModel):
    statement: str
    db_system: str
    count: int
    errors: int = 0
    traces: int = 0
    max_per_trace: int = 0
    max_per_trace_trace_id: str | None = None
    total_ms: float = 0.0
    max_ms: float | None = None
    slow_trace_ids: list[str] = []


class WindowStats(BaseModel):
    project: str
    service: str
    endpoint: str
    kind: Literal["server", "client", "db", "queries"]
    window_start: float
    window_end: float
    count: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    status_counts: dict[int, int] = {}
    queries_total: int = 0
    max_identical_per_trace: int = 0
    max_queries_per_trace: int = 0
    queries: list[QueryStats] = []
    sample_trace_ids: list[str] = []
    error_samples: list[RequestFact] = []
    slow_samples: list[RequestFact] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


class ClosedWindow(BaseModel):
    project: str
    service: str
    window_start: float
    window_end: float
    endpoints: list[WindowStats]
    late_facts: int = 0  # facts of this stream counted here because their own window had closed
    trace_overflow: int = 0  # queries counted without per-trace detail because of `max_trace_entries`
