"""new_error_template signals, from the template miner's first sight of a template in error records.

The pipeline's template miner knows when a message opens a new template (`TemplateMatch.is_new`);
for error records it calls `NewErrorTemplates.observe`, which turns the first sighting into a
signal. While the watcher is young (`warmup_s` after its first call) every template is new, so nothing
is raised then; a burst of new templates from one service is capped per window (the rest are only
counted), and a template id is signalled once however often it is reported. `state()` keeps this
across restarts, alongside the miner's own state.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vigil.detect.signals import Evidence, Severity, Signal, SignalKind, fingerprint

__all__ = ["NewErrorTemplates", "TemplateSignalConfig"]

_FATAL = 21  # OTLP severity number of FATAL


class TemplateSignalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    warmup_s: float = Field(900.0, ge=0)
    window_s: float = Field(60.0, gt=0)
    max_per_window: int = Field(20, ge=1)  # per service
    max_remembered: int = Field(100_000, ge=1)


class _State(BaseModel):
    started_at: float | None
    seen: list[str]
    capped: int


class NewErrorTemplates:
    """Callback target for templates first seen in error records; see the module docstring."""

    def __init__(self, config: TemplateSignalConfig | None = None) -> None:
        self.config = config or TemplateSignalConfig()
        self.started_at: float | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._window: tuple[float, dict[tuple[str, str], int]] = (-math.inf, {})
        self.capped = 0  # new templates not signalled because of `max_per_window`

    def observe(
        self,
        *,
        project: str,
        service: str,
        template_id: str,
        template: str,
        time_s: float,
        severity_number: int = 17,
        trace_id: str | None = None,
        record: dict[str, Any] | None = None,
    ) -> Signal | None:
        """A signal for a template first seen in an error record, or None when it is not news."""
        c = self.config
        if self.started_at is None:
            self.started_at = time_s
        key = f"{project}\x1f{service}\x1f{template_id}"
        if key in self._seen:
            return None
        self._seen[key] = None
        while len(self._seen) > c.max_remembered:
            self._seen.popitem(last=False)
        if time_s < self.started_at + c.warmup_s:
            return None
        start = math.floor(time_s / c.window_s) * c.window_s
        if start != self._window[0]:
            self._window = (start, {})
        counts = self._window[1]
        count = counts.get((project, service), 0)
        if count >= c.max_per_window:
            self.capped += 1
            return None
        counts[(project, service)] = count + 1
        severity = Severity.CRITICAL if severity_number >= _FATAL else Severity.WARNING
        short = template if len(template) <= 100 else template[:97] + "..."
        return Signal(
            kind=SignalKind.NEW_ERROR_TEMPLATE,
            severity=severity,
            project=project,
            service=service,
            window_start=start,
            window_end=start + c.window_s,
            fingerprint=fingerprint(SignalKind.NEW_ERROR_TEMPLATE, project, service, template_id),
            title=f"New error in {service}: {short}",
            value=1.0,
            threshold=1.0,
            evidence=Evidence(
                trace_ids=[trace_id] if trace_id else [],
                records=[record] if record is not None else [],
                template_id=template_id,
                template=template,
            ),
        )

    def state(self) -> dict[str, Any]:
        return _State(started_at=self.started_at, seen=list(self._seen), capped=self.capped).model_dump()

    @classmethod
    def from_state(
        cls, data: dict[str, Any], config: TemplateSignalConfig | None = None
    ) -> NewErrorTemplates:
        state = _State.model_validate(data)
        watcher = cls(config)
        watcher.started_at = state.started_at
        watcher._seen = OrderedDict.fromkeys(state.seen)
        watcher.capped = state.capped
        return watcher
