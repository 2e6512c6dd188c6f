"""The Kubernetes API's patch types and selectors, for the fields the Kubernetes double holds.

`apply_patch` does JSON patch (RFC 6902: add, remove, replace, test, copy, move), merge patch
(RFC 7386) and strategic merge patch as far as plain objects go: maps merge, `null` deletes, and lists
of objects that all have a `name` (containers, env, volumes) merge item by item by name; other lists
are replaced. `matches_labels` and `matches_fields` read label selectors (`a=b`, `a!=b`, `a in (x,y)`,
`a notin (x)`, `a`, `!a`) and field selectors (`a.b=c`, `a.b!=c`) as the API server does.
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["apply_patch", "matches_fields", "matches_labels"]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


def apply_patch(obj: dict[str, Any], patch: Any, content_type: str) -> Any:
    """The patched copy of `obj`; LookupError for a patch type it does not speak, ValueError for a bad patch."""
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise ValueError("a JSON patch must be a list of operations")
        result: Any = copy.deepcopy(obj)
        for op in patch:
            result = _json_patch_op(result, op)
        return result
    if content_type in (MERGE_PATCH, STRATEGIC_PATCH):
        if not isinstance(patch, dict):
            raise ValueError("a merge patch must be an object")
        return _merge(copy.deepcopy(obj), patch, strategic=content_type == STRATEGIC_PATCH)
    raise LookupError(
        f"the body of the request was in an unknown format - accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH}"
    )


def _merge(target: Any, patch: Any, *, strategic: bool) -> Any:
    if not isinstance(patch, dict):
        if (
            strategic
            and isinstance(patch, list)
            and isinstance(target, list)
            and _named(patch)
            and _named(target)
        ):
            merged = {item["name"]: item for item in target}
            for item in patch:
                merged[item["name"]] = _merge(merged.get(item["name"], {}), item, strategic=True)
            return list(merged.values())
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value, strategic=strategic)
    return result


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _json_patch_op(doc: Any, op: Any) -> Any:
    if not isinstance(op, dict) or "op" not in op or "path" not in op:
        raise ValueError(f"invalid JSON patch operation {op!r}")
    kind, parts = op["op"], _pointer(op["path"])
    if kind in ("copy", "move"):
        source = _pointer(op["from"])
        value = copy.deepcopy(_get(doc, source))
        if kind == "move":
            doc = _json_patch_op(doc, {"op": "remove", "path": op["from"]})
        return _json_patch_op(doc, {"op": "add", "path": op["path"], "value": value})
    if kind == "test":
        if _get(doc, parts) != op.get("value"):
            raise ValueError(f"test operation failed at {op['path']}")
        return doc
    if not parts:
        if kind == "remove":
            raise ValueError("cannot remove the whole document")
        return copy.deepcopy(op["value"])
    parent, last = _parent(doc, parts), parts[-1]
    if kind == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    elif kind in ("add", "replace"):
        value = copy.deepcopy(op["value"])
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, value)
            else:
                parent[index] = value
        else:
            if kind == "replace" and last not in parent:
                raise ValueError(f"replace operation does not apply: doc is missing key: {op['path']}")
            parent[last] = value
    else:
        raise ValueError(f"unknown JSON patch operation {kind!r}")
    return doc


def _get(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


_SET_TERM = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def matches_labels(labels: dict[str, str], selector: str) -> bool:
    for term in _split_terms(selector):
        if found := _SET_TERM.match(term):
            key, operator, values = found.groups()
            options = {v.strip() for v in values.split(",")}
            if (labels.get(key) in options) != (operator == "in") or (operator == "in" and key not in labels):
                return False
        elif "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif re.fullmatch(r"[\w./-]+", term):
            if term not in labels:
                return False
        else:
            raise ValueError(f"unable to parse requirement: {term!r}")
    return True


def matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for term in _split_terms(selector):
        negate = "!=" in term
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        if not _:
            raise ValueError(f"invalid field selector: {term!r}")
        actual: Any = obj
        for part in key.strip().split("."):
            actual = actual.get(part) if isinstance(actual, dict) else None
        if (str(actual) if actual is not None else "") == value.strip():
            if negate:
                return False
        elif not negate:
            return False
    return True
