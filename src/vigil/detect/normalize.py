"""Cardinality control: URL paths become routes, SQL statements become query shapes."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["normalize_route", "normalize_statement"]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^(?=.*\d)[0-9a-fA-F]{8,}$")
_NUMBERISH = re.compile(r"^[-+]?\d[\d.,_:-]*$")
_MIXED = re.compile(r"^(?=(?:.*\d){3})(?=.*[A-Za-z])[A-Za-z0-9_-]{16,}$")
_MAX_ROUTE = 200
_MAX_SEGMENTS = 16


def normalize_route(path: str) -> str:
    """`/users/42/orders/9f1c...` -> `/users/{id}/orders/{id}`; a full URL keeps only its path."""
    if "://" in path:
        path = urlsplit(path).path
    path = path.split("?", 1)[0].split("#", 1)[0]
    parts = [p for p in path.split("/") if p]
    out = []
    for part in parts[:_MAX_SEGMENTS]:
        if _NUMBERISH.match(part) or _UUID.match(part) or _HEX.match(part) or _MIXED.match(part):
            out.append("{id}")
        else:
            out.append(part)
    if len(parts) > _MAX_SEGMENTS:
        out.append("...")
    return ("/" + "/".join(out))[:_MAX_ROUTE]


_SQL_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_SQL_NUMBER = re.compile(r"(?<![\w$.])-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\b")
_SQL_PARAM = re.compile(r"\$\d+|(?<![:\w]):[A-Za-z_]\w*|@\w+|%s|%\(\w+\)s")
_SQL_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_SQL_ROWS = re.compile(r"\(\?\)(?:\s*,\s*\(\?\))+")
_SPACE = re.compile(r"\s+")
_MAX_STATEMENT = 1000


def normalize_statement(sql: str) -> str:
    """Mask literals and placeholders so every execution of one query shape has the same text."""
    s = _SQL_STRING.sub("?", sql)  # before comments: a literal may hold "--"
    s = _SQL_COMMENT.sub(" ", s)
    s = _SQL_PARAM.sub("?", s)
    s = _SQL_NUMBER.sub("?", s)
    s = _SQL_LIST.sub("(?)", s)
    s = _SQL_ROWS.sub("(?)", s)
    s = _SPACE.sub(" ", s).strip().rstrip(";").strip()
    return s[:_MAX_STATEMENT]
