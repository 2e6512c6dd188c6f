"""Parses and validates `vigil.yaml`, the declarative configuration loaded at start.

Every problem is reported as `file:line:column: field.path: message`, so the data is built from
PyYAML's node graph (which keeps positions) rather than from `yaml.safe_load`, and pydantic's
error locations are mapped back to the node they came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from vigil.errors import VigilError
from vigil.specs import NAME_PATTERN, Label, PipelineSpec, ProjectSpec, SinkSpec

MIN_KEY_LENGTH = 24
_MAX_NODES = 100_000
"""Aliases can make a small file expand exponentially ("billion laughs"): refuse past this."""

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SUBSTITUTION = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<body>[^}]*)\}|(?P<open>\{))")
_VARIABLE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")

YamlPath = tuple[str | int, ...]
Position = tuple[int, int]


class ConfigFileError(VigilError):
    """`vigil.yaml` cannot be used; `errors` holds one `file:line:column: ...` line per problem."""

    code = "invalid_config"
    status = 400

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors), details={"errors": errors})
        self.errors = errors


def _pipeline_name(name: str) -> str:
    if re.fullmatch(NAME_PATTERN, name) is None:
        raise ValueError(
            f"pipeline name {name!r} must be 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


PipelineName = Annotated[str, AfterValidator(_pipeline_name)]


def _unique(names: list[str | None], what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name is None:
            continue
        if name in seen:
            # `index` lets the loader point at the repeated entry rather than at the whole list.
            raise PydanticCustomError(
                "duplicate_name",
                "{what} {name} is declared more than once",
                {"what": what, "name": repr(name), "index": index},
            )
        seen.add(name)


class _Declared(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeclaredKey(_Declared):
    """A project API key given in the file, its value usually from the environment (`${VAR}`)."""

    name: Label
    key: SecretStr

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_KEY_LENGTH:
            raise ValueError(f"API key must be at least {MIN_KEY_LENGTH} characters")
        return value


class DeclaredProject(ProjectSpec):
    api_keys: list[DeclaredKey] = Field(default_factory=list)
    pipelines: dict[PipelineName, PipelineSpec] = Field(default_factory=dict)
    sinks: list[SinkSpec] = Field(default_factory=list)

    @field_validator("api_keys")
    @classmethod
    def _unique_keys(cls, keys: list[DeclaredKey]) -> list[DeclaredKey]:
        _unique([k.name for k in keys], "API key name")
        return keys

    @field_validator("sinks")
    @classmethod
    def _unique_sinks(cls, sinks: list[Any]) -> list[Any]:
        _unique([s.name for s in sinks], "sink name")
        return sinks


class VigilFile(_Declared):
    version: Literal[1] = 1
    projects: list[DeclaredProject]

    @field_validator("projects")
    @classmethod
    def _unique_projects(cls, projects: list[DeclaredProject]) -> list[DeclaredProject]:
        _unique([p.name for p in projects], "project name")
        return projects


def load_config_file(path: Path, environ: Mapping[str, str] | None = None) -> VigilFile:
    """Read, substitute `${VAR}` / `${VAR:-default}` / `$$` in string values, and validate."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError([f"{source}: no such file"]) from None
    except OSError as exc:
        raise ConfigFileError([f"{source}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError([f"{source}: not valid UTF-8 (byte {exc.start})"]) from None

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None:
            raise ConfigFileError([f"{source}:1:1: the file is empty; expected a mapping with `projects`"])
        reader = _Reader(source, os.environ if environ is None else environ)
        data = reader.build(root, ())
    except yaml.MarkedYAMLError as exc:
        raise ConfigFileError([_syntax_error(source, exc)]) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError([f"{source}: {exc}"]) from None
    if reader.problems:
        raise ConfigFileError(reader.report())

    try:
        return VigilFile.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            reader.add_validation_error(error, data)
        # Not chained: the ValidationError's text repeats the inputs, API keys and secrets included.
        raise ConfigFileError(reader.report()) from None


class _Reader:
    """Builds plain data from YAML nodes, remembering where each path came from."""

    def __init__(self, source: str, environ: Mapping[str, str]) -> None:
        self.source = source
        self.environ = environ
        self.positions: dict[YamlPath, Position] = {}
        self.problems: list[tuple[Position, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()
        self._budget = _MAX_NODES

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self.positions.setdefault(path, _position(node))
        self._budget -= 1
        if self._budget < 0:
            raise ConfigFileError([f"{self._where(node, path)}: more than {_MAX_NODES} values (aliases?)"])
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:
                return self._substitute(node, path)
            return self._constructor.construct_object(node)
        if id(node) in self._open:
            raise ConfigFileError([f"{self._where(node, path)}: an alias refers to its own anchor"])
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(child, (*path, index)) for index, child in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.Node, path: YamlPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, path, "mapping keys must be strings")
                continue
            # The raw text, not the resolved value: YAML 1.1 would turn keys like `on` or `no` into bools.
            key: str = key_node.value
            if key in result:
                line = self.positions[(*path, key)][0]
                self._problem(key_node, (*path, key), f"duplicate key {key!r} (first given on line {line})")
                continue
            self.positions.setdefault((*path, key), _position(key_node))
            result[key] = self.build(value_node, (*path, key))
        # `<<: *anchor` fills in keys the mapping does not give itself; positions keep the mapping's own.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self._problem(source, path, "`<<` must merge a mapping or a list of mappings")
                    continue
                for key, value in self.build(source, path).items():
                    result.setdefault(key, value)
        return result

    def _substitute(self, node: yaml.Node, path: YamlPath) -> str:
        def replace(match: re.Match[str]) -> str:
            if match["dollar"]:
                return "$"
            body = match["body"]
            if body is None:
                self._problem(node, path, "unterminated '${' (write '$$' for a literal '$')")
                return ""
            variable = _VARIABLE.fullmatch(body)
            if variable is None:
                self._problem(
                    node, path, f"invalid substitution '${{{body}}}': use ${{NAME}} or ${{NAME:-default}}"
                )
                return ""
            value = self.environ.get(variable["name"])
            if variable["default"] is not None and not value:
                return variable["default"]
            if value is None:
                self._problem(node, path, f"environment variable {variable['name']} is not set")
                return ""
            return value

        text: str = node.value
        return _SUBSTITUTION.sub(replace, text) if "$" in text else text

    def add_validation_error(self, error: ErrorDetails, data: Any) -> None:
        loc, message, ctx = error["loc"], error["msg"], error.get("ctx", {})
        if error["type"] == "duplicate_name":
            loc = (*loc, ctx["index"], "name")
        elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, str(ctx["discriminator"]).strip("'"))
            if error["type"] == "union_tag_not_found":
                message = "Field required"
        path = _yaml_path(loc, data)
        prefix = path
        while prefix not in self.positions:
            prefix = prefix[:-1]
        self.problems.append((self.positions[prefix], _describe(path, message.removeprefix("Value error, "))))

    def report(self) -> list[str]:
        # Sorted by position and deduplicated: an anchor merged twice would repeat its problems.
        ordered = sorted(dict.fromkeys(self.problems), key=lambda problem: problem[0])
        return [f"{self.source}:{line}:{column}: {text}" for (line, column), text in ordered]

    def _problem(self, node: yaml.Node, path: YamlPath, message: str) -> None:
        self.problems.append((_position(node), _describe(path, message)))

    def _where(self, node: yaml.Node, path: YamlPath) -> str:
        line, column = _position(node)
        return f"{self.source}:{line}:{column}: {_format_path(path) or 'top level'}"


def _position(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _yaml_path(loc: tuple[int | str, ...], data: Any) -> YamlPath:
    """Pydantic's `loc` without what is not in the file: union tags (`webhook`) and `[key]` markers."""
    path: list[str | int] = []
    for part in loc:
        in_file = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        )
        if not in_file and (part == "[key]" or (isinstance(data, dict) and part == data.get("type"))):
            continue
        data = data[part] if in_file else None
        path.append(part)
    return tuple(path)


def _format_path(path: YamlPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part) is None:
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text


def _describe(path: YamlPath, message: str) -> str:
    return f"{_format_path(path)}: {message}" if path else message


def _syntax_error(source: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    message = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        context_mark = exc.context_mark
        at = f" at line {context_mark.line + 1}, column {context_mark.column + 1}" if context_mark else ""
        message += f" ({exc.context}{at})"
    return f"{where}: {message}"
