"""Elasticsearch/OpenSearch `_search` with `query_string` over scripted documents.

    with ElasticsearchServer() as es:                                  # or: async with ...
        es.add("logs-shop-2026.12.06", {"@timestamp": "...", "service": "shop", "message": "pool exhausted"})
        # POST /logs-*/_search {"query": {"query_string": {"query": "service:shop AND pool"}}, "size": 20}
        es.searches                                                    # (index expression, body) asked

Queries: `query_string` (terms, `field:term`, "quoted phrases", `*` wildcards, AND/OR/NOT, `&&`
`||` `!` `+` `-`, parentheses, `default_operator`, `default_field`/`fields`), `match_all`, `match`,
`term`, `range` (gt/gte/lt/lte on numbers and times, `now-15m` style), and `bool` with must, filter,
should, must_not. A term matches a field when it is one of the field's words (case-insensitive) or the
whole value. `size`, `from` and `sort` (by field, asc or desc) apply. Indices are names, `*`
patterns and comma lists; `_search` with no index searches all. Errors in Elasticsearch's shape:
404 `index_not_found_exception` for a named index that does not exist, 400 `parsing_exception` for an
unknown query, 400 `query_shard_exception` for a query string it cannot parse.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.doubles._rest import Call, HttpError, Response, RestServer

__all__ = ["ElasticsearchServer", "parse_query_string"]

Doc = dict[str, Any]
Predicate = Callable[[Doc], bool]
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|&&|\|\||[!+-]|[^\s()"]+(?:"(?:[^"\\]|\\.)*")?)')
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
HEADERS = {"x-elastic-product": "Elasticsearch"}


def _error(status: int, kind: str, reason: str, **extra: Any) -> HttpError:
    cause = {"type": kind, "reason": reason, **extra}
    return HttpError(status, {"error": {"root_cause": [cause], **cause}, "status": status}, HEADERS)


def _values(doc: Any, path: str) -> list[Any]:
    if isinstance(doc, dict) and path in doc:
        value = doc[path]
        return value if isinstance(value, list) else [value]
    head, _, rest = path.partition(".")
    if rest and isinstance(doc, dict) and head in doc:
        return _values(doc[head], rest)
    return []


def _all_fields(doc: Any, prefix: str = "") -> list[str]:
    if not isinstance(doc, dict):
        return [prefix]
    return [
        f for k, v in doc.items() for f in _all_fields(v, f"{prefix}{k}" if not prefix else f"{prefix}.{k}")
    ]


def _term_matches(value: Any, term: str, phrase: bool) -> bool:
    text, wanted = str(value).lower(), term.lower()
    if phrase:
        return wanted in text
    if "*" in wanted or "?" in wanted:
        return fnmatch.fnmatchcase(text, wanted) or any(
            fnmatch.fnmatchcase(w, wanted) for w in re.findall(r"\w+", text)
        )
    return text == wanted or wanted in re.findall(r"[\w.]+|\w+", text) or wanted in re.findall(r"\w+", text)


def parse_query_string(query: str, default_fields: list[str], default_operator: str = "OR") -> Predicate:
    """A predicate on documents for Lucene's query string syntax (the part a search for logs uses)."""
    tokens = [t for t in _TOKEN.findall(query) if t]
    if "".join(tokens).replace(" ", "") != re.sub(r"\s+", "", query):
        raise ValueError(f"Failed to parse query [{query}]")
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def leaf(token: str) -> Predicate:
        field, phrase = None, False
        found = re.fullmatch(r"([\w.@*-]+):(.+)", token)
        if found:
            field, token = found.groups()
        if token.startswith('"'):
            token, phrase = token[1:-1], True
        if token == "*" and field is None:
            return lambda doc: True
        fields = [field] if field else default_fields

        def matches(doc: Doc) -> bool:
            names = fields or _all_fields(doc)
            names = [
                n
                for pattern in names
                for n in (fnmatch.filter(_all_fields(doc), pattern) if "*" in pattern else [pattern])
            ]
            if token == "*":
                return any(_values(doc, n) for n in names)
            return any(_term_matches(v, token, phrase) for n in names for v in _values(doc, n))

        return matches

    def unary() -> Predicate:
        token = peek()
        if token is None or token in (")", "AND", "OR", "&&", "||"):
            raise ValueError(f"Failed to parse query [{query}]: unexpected {token or 'end of input'}")
        take()
        if token in ("NOT", "!", "-"):
            inner = unary()
            return lambda doc: not inner(doc)
        if token == "+":
            return unary()
        if token == "(":
            inner = disjunction()
            if peek() != ")":
                raise ValueError(f"Failed to parse query [{query}]: missing )")
            take()
            return inner
        return leaf(token)

    def conjunction() -> Predicate:
        parts = [unary()]
        while peek() in ("AND", "&&") or (
            default_operator == "AND" and peek() not in (None, ")", "OR", "||")
        ):
            if peek() in ("AND", "&&"):
                take()
            parts.append(unary())
        return lambda doc: all(p(doc) for p in parts)

    def disjunction() -> Predicate:
        parts = [conjunction()]
        while peek() in ("OR", "||") or (default_operator == "OR" and peek() not in (None, ")")):
            if peek() in ("OR", "||"):
                take()
            parts.append(conjunction())
        return lambda doc: any(p(doc) for p in parts)

    predicate = disjunction()
    if peek() is not None:
        raise ValueError(f"Failed to parse query [{query}]: unexpected {peek()}")
    return predicate


def _moment(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    if text.startswith("now"):
        moment = datetime.now(UTC)
        for sign, amount, unit in re.findall(r"([+-])(\d+)([smhdw])", text[3:]):
            delta = timedelta(seconds=int(amount) * _UNITS[unit])
            moment = moment + delta if sign == "+" else moment - delta
        return moment.timestamp()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def compile_query(query: Any) -> Predicate:
    if not isinstance(query, dict) or len(query) != 1:
        raise _error(400, "parsing_exception", "[_na] query malformed, must start with start_object")
    [(kind, spec)] = query.items()
    if kind == "match_all":
        return lambda doc: True
    if kind == "query_string":
        fields = spec.get("fields") or ([spec["default_field"]] if spec.get("default_field") else [])
        operator = str(spec.get("default_operator", "OR")).upper()
        try:
            return parse_query_string(str(spec.get("query", "")), fields, operator)
        except ValueError as exc:
            raise _error(400, "query_shard_exception", str(exc)) from None
    if kind in ("match", "term", "match_phrase"):
        [(field, wanted)] = spec.items()
        wanted = wanted.get("query", wanted.get("value")) if isinstance(wanted, dict) else wanted
        exact = kind == "term"
        return lambda doc: any(
            v == wanted if exact else _term_matches(v, str(wanted), kind == "match_phrase")
            for v in _values(doc, field)
        )
    if kind == "range":
        [(field, bounds)] = spec.items()
        limits = {op: _moment(bounds[op]) for op in ("gt", "gte", "lt", "lte") if op in bounds}
        checks = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}

        def in_range(doc: Doc) -> bool:
            moments = [m for m in (_moment(v) for v in _values(doc, field)) if m is not None]
            return any(
                all(checks[op](m, limit) for op, limit in limits.items() if limit is not None)
                for m in moments
            )

        return in_range
    if kind == "bool":

        def clauses(name: str) -> list[Predicate]:
            value = spec.get(name, [])
            return [compile_query(q) for q in (value if isinstance(value, list) else [value])]

        must, must_not, should = clauses("must") + clauses("filter"), clauses("must_not"), clauses("should")
        minimum = int(spec.get("minimum_should_match", 0 if must else 1))
        return lambda doc: (
            all(p(doc) for p in must)
            and not any(p(doc) for p in must_not)
            and (not should or sum(p(doc) for p in should) >= minimum)
        )
    raise _error(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=13)


class ElasticsearchServer(RestServer):
    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.indices: dict[str, dict[str, Doc]] = {}
        self.searches: list[tuple[str, Any]] = []
        self._ids = itertools.count(1)
        for method in ("GET", "POST"):
            self.route(method, r"/(?P<index>[^/_][^/]*)/_search", self._search)
            self.route(method, r"/_search", self._search)
        self.route("GET", r"/", self._info)

    def add(self, index: str, *docs: Doc) -> list[str]:
        """Index documents (an `_id` key is taken as the id); returns their ids."""
        ids = []
        with self._cond:
            for doc in docs:
                source = {k: v for k, v in doc.items() if k != "_id"}
                doc_id = str(doc.get("_id") or f"doc-{next(self._ids)}")
                self.indices.setdefault(index, {})[doc_id] = source
                ids.append(doc_id)
        return ids

    def failure_body(self, status: int) -> bytes:
        return orjson.dumps(
            _error(status, "es_rejected_execution_exception", f"scripted failure {status}").body
        )

    def not_found(self, method: str, path: str) -> HttpError:
        return _error(
            405 if path.endswith("_search") else 400,
            "illegal_argument_exception",
            f"no handler found for uri [{path}] and method [{method}]",
        )

    def _info(self, call: Call) -> Response:
        version = {"number": "8.15.0", "build_flavor": "default", "lucene_version": "9.11.1"}
        body = {
            "name": "double",
            "cluster_name": "vigil-test",
            "version": version,
            "tagline": "You Know, for Search",
        }
        return Response(body=body, headers=dict(HEADERS))

    def _resolve(self, expression: str) -> list[str]:
        names: list[str] = []
        for part in expression.split(","):
            if part in ("_all", "*"):
                names.extend(self.indices)
            elif "*" in part:
                names.extend(fnmatch.filter(self.indices, part))
            elif part in self.indices:
                names.append(part)
            else:
                raise _error(
                    404,
                    "index_not_found_exception",
                    f"no such index [{part}]",
                    index=part,
                    **{"resource.type": "index_or_alias", "resource.id": part},
                )
        return sorted(set(names))

    def _search(self, call: Call) -> Response:
        expression = call.params.get("index", "_all")
        body = call.json() or {}
        if not isinstance(body, dict):
            raise _error(400, "parsing_exception", "request body must be an object")
        self.searches.append((expression, body))
        predicate = compile_query(body.get("query", {"match_all": {}}))
        if (q := call.arg("q")) is not None:
            predicate = compile_query({"query_string": {"query": q}})
        hits = [
            {"_index": name, "_id": doc_id, "_score": 1.0, "_source": doc}
            for name in self._resolve(expression)
            for doc_id, doc in self.indices[name].items()
            if predicate(doc)
        ]
        for rule in reversed(
            body.get("sort", [])
            if isinstance(body.get("sort"), list)
            else [body["sort"]]
            if "sort" in body
            else []
        ):
            field, order = (rule, "asc") if isinstance(rule, str) else next(iter(rule.items()))
            order = order.get("order", "asc") if isinstance(order, dict) else order
            hits.sort(key=lambda h: str((_values(h["_source"], field) or [""])[0]), reverse=order == "desc")
        start, size = (
            int(body.get("from", call.arg("from") or 0)),
            int(body.get("size", call.arg("size") or 10)),
        )
        page = hits[start : start + size]
        result = {
            "took": 1,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "total": {"value": len(hits), "relation": "eq"},
                "max_score": 1.0 if page else None,
                "hits": page,
            },
        }
        return Response(body=result, headers=dict(HEADERS))
