"""Just enough GraphQL for a double: parse one operation, resolve its root fields, answer only what it selected.

Resolvers return views: dicts whose values are plain data or callables taking the field's arguments
(relations, resolved only when selected). Every view has a `__typename`. Selecting a field a view lacks is
the validation error a real schema gives. Operations with fragments, directives or several
operations without an `operationName` are refused as the double's limits, clearly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Field", "GraphQLError", "Operation", "parse_operation", "select"]

_TOKENS = re.compile(
    r'\s+|,|#[^\n]*|(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)|(?P<spread>\.\.\.)|(?P<punct>[{}()\[\]:$!=@])"
)


class GraphQLError(Exception):
    def __init__(self, message: str, code: str = "GRAPHQL_VALIDATION_FAILED", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None
    args: Mapping[str, Any]
    selections: tuple[Field, ...] | None

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class Operation:
    kind: str
    name: str | None
    fields: tuple[Field, ...]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        found = _TOKENS.match(text, position)
        if found is None:
            raise GraphQLError(
                f'Syntax Error: Unexpected character: "{text[position]}".', "GRAPHQL_PARSE_FAILED"
            )
        position = found.end()
        if found.lastgroup:
            tokens.append((found.lastgroup, found.group(found.lastgroup)))
    return tokens


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, Any]) -> None:
        self.tokens = _tokenize(text)
        self.position = 0
        self.variables = variables

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise GraphQLError("Syntax Error: Unexpected <EOF>.", "GRAPHQL_PARSE_FAILED")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise GraphQLError(
                f'Syntax Error: Expected "{expected}", found "{token[1]}".', "GRAPHQL_PARSE_FAILED"
            )
        self.position += 1
        return token

    def operations(self) -> list[Operation]:
        found = []
        while self.peek() is not None:
            kind, name = "query", None
            if self.peek() in ("query", "mutation", "subscription"):
                kind = self.take()[1]
                if self.peek() not in ("(", "{", "@"):
                    name = self.take()[1]
                if self.peek() == "(":
                    self.skip_group("(", ")")
            elif self.peek() == "fragment":
                raise GraphQLError("the double does not take fragments; select fields inline")
            found.append(Operation(kind, name, self.selection_set()))
        return found

    def skip_group(self, opening: str, closing: str) -> None:
        depth = 0
        while True:
            token = self.take()[1]
            depth += (token == opening) - (token == closing)
            if depth == 0:
                return

    def selection_set(self) -> tuple[Field, ...]:
        self.take("{")
        fields = []
        while self.peek() != "}":
            if self.peek() in ("...", "@"):
                raise GraphQLError("the double does not take fragments or directives; select fields inline")
            fields.append(self.field())
        self.take("}")
        return tuple(fields)

    def field(self) -> Field:
        kind, name = self.take()
        if kind != "name":
            raise GraphQLError(f'Syntax Error: Expected Name, found "{name}".', "GRAPHQL_PARSE_FAILED")
        alias = None
        if self.peek() == ":":
            self.take()
            alias, name = name, self.take()[1]
        args: dict[str, Any] = {}
        if self.peek() == "(":
            self.take()
            while self.peek() != ")":
                arg = self.take()[1]
                self.take(":")
                args[arg] = self.value()
            self.take(")")
        selections = self.selection_set() if self.peek() == "{" else None
        return Field(name, alias, args, selections)

    def value(self) -> Any:
        kind, token = self.take()
        if token == "$":
            name = self.take()[1]
            return self.variables.get(name)
        if kind == "string":
            return bytes(token[1:-1], "utf-8").decode("unicode_escape")
        if kind == "number":
            return float(token) if any(c in token for c in ".eE") else int(token)
        if token in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token]
        if token == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.take("]")
            return items
        if token == "{":
            obj = {}
            while self.peek() != "}":
                key = self.take()[1]
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        if kind == "name":
            return token
        raise GraphQLError(f'Syntax Error: Unexpected "{token}".', "GRAPHQL_PARSE_FAILED")


def parse_operation(query: str, variables: Mapping[str, Any], operation_name: str | None) -> Operation:
    operations = _Parser(query, variables).operations()
    if not operations:
        raise GraphQLError("Syntax Error: Unexpected <EOF>.", "GRAPHQL_PARSE_FAILED")
    if operation_name is not None:
        for operation in operations:
            if operation.name == operation_name:
                return operation
        raise GraphQLError(f'Unknown operation named "{operation_name}".')
    if len(operations) > 1:
        raise GraphQLError("Must provide operation name if query contains multiple operations.")
    return operations[0]


def select(value: Any, field: Field) -> Any:
    """`value` cut down to what `field` selected (resolving callables with their arguments)."""
    if callable(value):
        value = value(field.args)
    if value is None:
        return None
    if isinstance(value, list):
        return [select(item, field) for item in value]
    if not isinstance(value, dict):
        if field.selections:
            raise GraphQLError(
                f'Field "{field.name}" must not have a selection since its type has no subfields.'
            )
        return value
    if not field.selections:
        raise GraphQLError(
            f'Field "{field.name}" of type "{value["__typename"]}" must have a selection of subfields.'
        )
    result = {}
    for sub in field.selections:
        if sub.name not in value:
            raise GraphQLError(f'Cannot query field "{sub.name}" on type "{value["__typename"]}".')
        result[sub.key] = select(value[sub.name], sub)
    return result


Resolver = Callable[[Mapping[str, Any]], Any]
