"""Loki's query API (`/loki/api/v1/query_range`, `/loki/api/v1/query`) over scripted log lines.

    with LokiServer() as loki:                                     # or: async with ...
        loki.push({"app": "shop", "level": "error"}, "pool exhausted", at=time.time())
        # GET /loki/api/v1/query_range?query={app="shop"} |= "pool"&start=...&end=...&limit=100
        loki.queries                                               # every LogQL asked, in order

LogQL as far as log queries go: a stream selector (`=`, `!=`, `=~`, `!~`, values in double quotes or
backticks) and line filters (`|=`, `!=`, `|~`, `!~`). Times as Loki reads them: RFC 3339, Unix seconds
with a fraction, or integers (10 digits or fewer: seconds, else nanoseconds); start is inclusive, end
exclusive; `limit` (default 100) keeps the newest lines for `direction=backward` (the default), the
oldest for `forward`. Answers `streams` results with nanosecond string timestamps. Refuses with 400
and a plain-text body, as Loki does: a parse error, a selector that matches everything, end before
start; anything else in the pipeline (parsers, label filters, metric queries) is refused with 400 too,
saying the double does not speak it. `instant_log_queries=False` refuses log queries on
`/loki/api/v1/query` as Loki 3 does.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from tests.doubles._rest import Call, HttpError, RestServer

__all__ = ["LokiServer", "parse_logql"]

NS = 1_000_000_000
DEFAULT_LIMIT = 100
_STRING = r'"(?:[^"\\]|\\.)*"|`[^`]*`'
_MATCHER = re.compile(rf"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*({_STRING})\s*(,|$)")
_FILTER = re.compile(rf"\s*(\|=|!=|\|~|!~)\s*({_STRING})")

Matcher = tuple[str, str, str]
LineFilter = tuple[str, str]


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    return bytes(token[1:-1], "utf-8").decode("unicode_escape")


def _parse_error(message: str) -> HttpError:
    return HttpError(400, f"parse error : {message}", {"content-type": "text/plain; charset=utf-8"})


def parse_logql(query: str) -> tuple[list[Matcher], list[LineFilter]]:
    """The selector's matchers and the line filters of a log query; HttpError(400) otherwise."""
    text = query.strip()
    if not text.startswith("{"):
        raise _parse_error(f"the double answers log queries only (a selector, then line filters): {query}")
    close = text.find("}")
    if close < 0:
        raise _parse_error("syntax error: unexpected $end, expecting } or ,")
    body, rest = text[1:close], text[close + 1 :]
    matchers: list[Matcher] = []
    position = 0
    while position < len(body.strip()):
        found = _MATCHER.match(body, position)
        if found is None:
            raise _parse_error(f"syntax error: unexpected input in selector at {body[position:]!r}")
        name, op, value, _ = found.groups()
        matchers.append((name, op, _unquote(value)))
        position = found.end()
    if not any(_not_empty_compatible(m) for m in matchers):
        raise HttpError(
            400,
            "queries require at least one regexp or equality matcher that does not have an empty-compatible value. "
            'For instance, app=~".*" does not meet this requirement, but app=~".+" will',
            {"content-type": "text/plain; charset=utf-8"},
        )
    filters: list[LineFilter] = []
    position = 0
    while rest[position:].strip():
        found = _FILTER.match(rest, position)
        if found is None:
            raise _parse_error(
                f"the double speaks only line filters after the selector, not {rest[position:].strip()!r}"
            )
        op, value = found.groups()
        filters.append((op, _unquote(value)))
        position = found.end()
    for op, value in filters:
        if op in ("|~", "!~"):
            _compile(value)
    return matchers, filters


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _parse_error(f"invalid regular expression {pattern!r}: {exc}") from None


def _not_empty_compatible(matcher: Matcher) -> bool:
    _, op, value = matcher
    if op == "=":
        return value != ""
    if op == "=~":
        return _compile(value).fullmatch("") is None
    return False


def _selects(labels: dict[str, str], matchers: list[Matcher]) -> bool:
    for name, op, value in matchers:
        actual = labels.get(name, "")
        matched = actual == value if op in ("=", "!=") else _compile(value).fullmatch(actual) is not None
        if matched != (op in ("=", "=~")):
            return False
    return True


def _passes(line: str, filters: list[LineFilter]) -> bool:
    for op, value in filters:
        found = value in line if op in ("|=", "!=") else _compile(value).search(line) is not None
        if found != (op in ("|=", "|~")):
            return False
    return True


def parse_loki_time(text: str) -> int:
    """Nanoseconds since the epoch, as Loki reads a time parameter."""
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * NS)
    except ValueError:
        pass
    if "." in text:
        return int(float(text) * NS)
    value = int(text)
    return value * NS if len(text.lstrip("-")) <= 10 else value


class LokiServer(RestServer):
    def __init__(self, *, instant_log_queries: bool = True, port: int = 0) -> None:
        super().__init__(port=port)
        self.instant_log_queries = instant_log_queries
        self.entries: list[tuple[dict[str, str], int, str]] = []
        """(stream labels, time in ns, line) in push order."""
        self.queries: list[str] = []
        for method in ("GET", "POST"):
            self.route(method, r"/loki/api/v1/query_range", self._query_range)
            self.route(method, r"/loki/api/v1/query", self._query)
        self.route("GET", r"/ready", lambda call: "ready\n")

    def push(self, labels: dict[str, str], *lines: str, at: float | None = None) -> None:
        """Lines of one stream at `at` (Unix seconds; now by default), a nanosecond apart."""
        start = int((time.time() if at is None else at) * NS)
        with self._cond:
            self.entries.extend((dict(labels), start + i, line) for i, line in enumerate(lines))

    def failure_body(self, status: int) -> bytes:
        return f"scripted failure {status}\n".encode()

    def not_found(self, method: str, path: str) -> HttpError:
        return HttpError(404, "404 page not found\n", {"content-type": "text/plain; charset=utf-8"})

    def _time(self, args: dict[str, list[str]], name: str, default: int) -> int:
        raw = (args.get(name) or [""])[0]
        if not raw:
            return default
        try:
            return parse_loki_time(raw)
        except ValueError:
            raise HttpError(
                400, f'invalid parameter "{name}": cannot parse "{raw}" to a valid timestamp'
            ) from None

    def _select(self, args: dict[str, list[str]], start: int, end: int) -> Any:
        query = (args.get("query") or [""])[0]
        if not query.strip():
            raise _parse_error("syntax error: unexpected $end")
        matchers, filters = parse_logql(query)
        self.queries.append(query)
        try:
            limit = int((args.get("limit") or [str(DEFAULT_LIMIT)])[0])
        except ValueError:
            raise HttpError(400, 'invalid parameter "limit": not a number') from None
        direction = (args.get("direction") or ["backward"])[0]
        if direction not in ("backward", "forward"):
            raise HttpError(400, f'invalid parameter "direction": invalid direction {direction!r}')
        hits = [
            (labels, at, line)
            for labels, at, line in self.entries
            if start <= at < end and _selects(labels, matchers) and _passes(line, filters)
        ]
        hits.sort(key=lambda e: e[1], reverse=direction == "backward")
        hits = hits[:limit]
        streams: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
        for labels, at, line in hits:
            streams.setdefault(tuple(sorted(labels.items())), []).append([str(at), line])
        result = [{"stream": dict(key), "values": values} for key, values in streams.items()]
        stats = {"summary": {"totalEntriesReturned": len(hits), "execTime": 0.001}}
        return {"status": "success", "data": {"resultType": "streams", "result": result, "stats": stats}}

    def _query_range(self, call: Call) -> Any:
        args = call.form()
        now = time.time_ns()
        end = self._time(args, "end", now)
        start = self._time(args, "start", end - 3600 * NS)
        if end < start:
            raise HttpError(400, "end timestamp must not be before or equal to start time")
        return self._select(args, start, end)

    def _query(self, call: Call) -> Any:
        args = call.form()
        if not self.instant_log_queries:
            raise HttpError(
                400,
                "log queries are not supported as an instant query type, please change your query to a range query type",
            )
        at = self._time(args, "time", time.time_ns())
        return self._select(args, at - 3600 * NS, at + 1)
