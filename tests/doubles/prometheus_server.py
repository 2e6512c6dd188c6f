"""Prometheus's HTTP query API (`/api/v1/query`, `/api/v1/query_range`) answering scripted expressions.

    with PrometheusServer() as prom:                                  # or: async with ...
        prom.set('sum(rate(http_errors_total{job="shop"}[5m]))', 4.2)  # one series, no labels
        prom.set("up == 0", [({"job": "shop", "instance": "a:9100"}, 1)])
        prom.set("queue_depth", lambda t: 100 - t % 100)              # a value per evaluation time
        prom.set("up == 0", [])                                       # the condition has cleared
        prom.fail("rate(x[5m]", "1:10: parse error: unclosed left parenthesis")
        prom.queries                                                  # every expression asked, in order

GET and form-encoded POST, as Prometheus takes both. An expression is looked up after trimming; one
not scripted answers an empty result (a metric nobody exports). A scripted value is a number, a
function of the evaluation time (None for no sample), or a list of (labels, number or function).
Answers `vector` for instant queries and `matrix` (one sample per step) for ranges. Refuses like
Prometheus with `{"status": "error", "errorType": "bad_data", "error": ...}` and 400: a missing
query, an unbalanced expression, unparseable times or steps, end before start, over 11,000 points.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from tests.doubles._rest import Call, HttpError, RestServer

__all__ = ["PrometheusServer", "parse_duration", "parse_time"]

Sample = float | Callable[[float], float | None]
Scripted = Sample | list[tuple[Mapping[str, str], Sample]]
MAX_POINTS = 11_000
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f'cannot parse "{text}" to a valid timestamp') from None


def parse_duration(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f'cannot parse "{text}" to a valid duration')
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def _balance_problem(expr: str) -> str | None:
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    in_string: str | None = None
    for i, char in enumerate(expr, start=1):
        if in_string:
            in_string = None if char == in_string else in_string
        elif char in "\"'`":
            in_string = char
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return (
                f"1:{i}: parse error: unexpected right {'parenthesis' if char == ')' else 'bracket'} {char!r}"
            )
    if in_string:
        return "1:1: parse error: unterminated quoted string"
    if stack:
        kind = {"(": "parenthesis", "[": "bracket", "{": "brace"}[stack[-1]]
        return f"1:{len(expr) + 1}: parse error: unclosed left {kind}"
    return None


class PrometheusServer(RestServer):
    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self._values: dict[str, Scripted] = {}
        self._errors: dict[str, str] = {}
        self.queries: list[str] = []
        for method in ("GET", "POST"):
            self.route(method, r"/api/v1/query", self._instant)
            self.route(method, r"/api/v1/query_range", self._range)
        self.route("GET", r"/-/(?:ready|healthy)", lambda call: "Prometheus Server is Ready.\n")

    def set(self, expr: str, value: Scripted | None) -> None:
        """What `expr` evaluates to from now on; None or [] is an empty result."""
        with self._cond:
            self._errors.pop(expr.strip(), None)
            self._values[expr.strip()] = [] if value is None else value

    def fail(self, expr: str, error: str, error_type: str = "bad_data") -> None:
        """Refuse `expr` with this error (`bad_data`: 400, `execution`: 422, `timeout`: 503)."""
        with self._cond:
            self._errors[expr.strip()] = f"{error_type}\0{error}"

    def failure_body(self, status: int) -> bytes:
        kind = {422: "execution", 503: "timeout"}.get(status, "internal" if status >= 500 else "bad_data")
        return orjson.dumps({"status": "error", "errorType": kind, "error": f"scripted failure {status}"})

    def not_found(self, method: str, path: str) -> HttpError:
        return HttpError(404, b"404 page not found\n", {"content-type": "text/plain; charset=utf-8"})

    def _expr(self, args: dict[str, list[str]]) -> str:
        expr = (args.get("query") or [""])[0].strip()
        if not expr:
            raise _bad(
                'invalid parameter "query": unknown position: parse error: no expression found in input'
            )
        if problem := _balance_problem(expr):
            raise _bad(f'invalid parameter "query": {problem}')
        self.queries.append(expr)
        if expr in self._errors:
            kind, message = self._errors[expr].split("\0", 1)
            status = {"bad_data": 400, "execution": 422, "timeout": 503}.get(kind, 500)
            raise HttpError(status, {"status": "error", "errorType": kind, "error": message})
        return expr

    def _series(self, expr: str) -> list[tuple[Mapping[str, str], Sample]]:
        scripted = self._values.get(expr, [])
        return scripted if isinstance(scripted, list) else [({}, scripted)]

    def _instant(self, call: Call) -> Any:
        args = call.form()
        expr = self._expr(args)
        at = _time_arg(args, "time", time.time())
        result = []
        for labels, sample in self._series(expr):
            value = sample(at) if callable(sample) else sample
            if value is not None:
                result.append({"metric": dict(labels), "value": [at, format_value(value)]})
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    def _range(self, call: Call) -> Any:
        args = call.form()
        expr = self._expr(args)
        for required in ("start", "end", "step"):
            if not args.get(required):
                raise _bad(
                    f'invalid parameter "{required}": cannot parse "" to a valid {"duration" if required == "step" else "timestamp"}'
                )
        start, end = _time_arg(args, "start", 0), _time_arg(args, "end", 0)
        try:
            step = parse_duration(args["step"][0])
        except ValueError as exc:
            raise _bad(f'invalid parameter "step": {exc}') from None
        if end < start:
            raise _bad('invalid parameter "end": end timestamp must not be before start time')
        if step <= 0:
            raise _bad(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        if (end - start) / step > MAX_POINTS:
            raise _bad(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
            )
        steps = [start + i * step for i in range(int((end - start) / step) + 1)]
        result = []
        for labels, sample in self._series(expr):
            values = [(t, sample(t) if callable(sample) else sample) for t in steps]
            points = [[t, format_value(v)] for t, v in values if v is not None]
            if points:
                result.append({"metric": dict(labels), "values": points})
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def _bad(message: str) -> HttpError:
    return HttpError(400, {"status": "error", "errorType": "bad_data", "error": message})


def _time_arg(args: dict[str, list[str]], name: str, default: float) -> float:
    raw = (args.get(name) or [""])[0]
    if not raw:
        return default
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise _bad(f'invalid parameter "{name}": {exc}') from None
