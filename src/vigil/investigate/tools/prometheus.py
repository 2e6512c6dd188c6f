"""`prometheus_query` (PromQL at one instant) and `prometheus_range` (over a time range): one
sample per series, with its labels and its value (for a range: last, min, max, points)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext, ToolFailed
from vigil.investigate.tools.http import call_json, time_range

MAX_RANGE_POINTS = 500
"""A range query asks for at most this many points per series (the step grows to fit)."""


class PromQueryArgs(ToolArgs):
    query: str = Field(min_length=1, max_length=4_000)
    time: datetime | None = None


class PromRangeArgs(ToolArgs):
    query: str = Field(min_length=1, max_length=4_000)
    since: datetime | None = None
    until: datetime | None = None
    step_s: float | None = Field(default=None, gt=0)


def _labels(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


async def _prometheus(ctx: ToolContext, path: str, params: dict[str, Any]) -> dict[str, Any]:
    assert ctx.settings.prometheus_url is not None
    answer = await call_json(ctx, "prometheus", "POST", ctx.settings.prometheus_url + path, params=params)
    if not isinstance(answer, dict) or answer.get("status") != "success":
        raise ToolFailed(f"prometheus: {answer.get('error') if isinstance(answer, dict) else answer}")
    data: dict[str, Any] = answer.get("data") or {}
    return data


class PromQuery(Tool):
    name = "prometheus_query"
    description = "A PromQL expression evaluated at one instant (default now): one line per series."
    args = PromQueryArgs

    def enabled(self, ctx: ToolContext) -> bool:
        return ctx.settings.prometheus_url is not None

    async def gather(self, ctx: ToolContext, project_id: str, args: PromQueryArgs) -> Found:
        params: dict[str, Any] = {"query": args.query}
        if args.time is not None:
            params["time"] = args.time.timestamp()
        data = await _prometheus(ctx, "/api/v1/query", params)
        kind = data.get("resultType")
        result = data.get("result")
        found = Found(counts={"result_type": kind})
        if kind in ("scalar", "string") and isinstance(result, list):
            found.samples.append(Sample(text=f"{args.query} = {result[1]}", fields={"value": result[1]}))
        else:
            for series in result or []:
                value = (series.get("value") or [None, None])[1]
                labels = _labels(series.get("metric") or {})
                found.samples.append(Sample(text=f"{labels} {value}", fields={"value": value}))
        found.counts["series"] = len(found.samples)
        return found


class PromRangeQuery(Tool):
    name = "prometheus_range"
    description = "A PromQL expression over a time range (default the last hour): each series summarized."
    args = PromRangeArgs

    def enabled(self, ctx: ToolContext) -> bool:
        return ctx.settings.prometheus_url is not None

    async def gather(self, ctx: ToolContext, project_id: str, args: PromRangeArgs) -> Found:
        start, end = time_range(args.since, args.until)
        span = (end - start).total_seconds()
        step = max(args.step_s or 0.0, span / MAX_RANGE_POINTS, 1.0)
        data = await _prometheus(
            ctx,
            "/api/v1/query_range",
            {"query": args.query, "start": start.timestamp(), "end": end.timestamp(), "step": step},
        )
        found = Found(counts={"result_type": data.get("resultType"), "step_s": step})
        points = 0
        for series in data.get("result") or []:
            values = [float(v) for _, v in series.get("values") or []]
            points += len(values)
            if not values:
                continue
            labels = _labels(series.get("metric") or {})
            summary = {"last": values[-1], "min": min(values), "max": max(values), "points": len(values)}
            found.samples.append(
                Sample(
                    text=f"{labels} last={values[-1]:g} min={min(values):g} max={max(values):g} points={len(values)}",
                    fields=summary,
                )
            )
        found.counts |= {"series": len(found.samples), "points": points}
        return found
