"""The management API as the CLI uses it: where it is, the admin token, and failures as one red line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, NoReturn, Self

import httpx
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from vigil import __version__

DEFAULT_API_URL = "http://127.0.0.1:8080"
TOKEN_FILE = "admin-token"

console = Console()
errors = Console(stderr=True)

ApiUrlOption = Annotated[
    str, typer.Option("--api-url", envvar="VIGIL_API_URL", help="Base URL of the Vigil management API.")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="VIGIL_ADMIN_TOKEN",
        help="Admin token (default: read from <data dir>/admin-token).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]
ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="Project id or name.")]


class CliFailure(Exception):
    """Something the CLI reports as one line and exit code 1."""


class ApiError(CliFailure):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)


def data_dir() -> Path:
    """Where `vigil up` keeps its state; the CLI finds the admin token there."""
    return Path(os.environ.get("VIGIL_DATA_DIR") or ".vigil")


def admin_token(token: str | None) -> str:
    if token:
        return token
    path = data_dir() / TOKEN_FILE
    try:
        stored = path.read_text().strip()
    except FileNotFoundError:
        fail(f"no admin token: pass --token, set VIGIL_ADMIN_TOKEN, or run where {path} exists")
    except OSError as exc:
        fail(f"cannot read the admin token from {path}: {exc.strerror}")
    if not stored:
        fail(f"{path} is empty")
    return stored


def api_error(response: httpx.Response) -> ApiError:
    code, message = f"http_{response.status_code}", response.reason_phrase
    details: dict[str, Any] = {}
    try:
        body: Any = response.json()
    except ValueError:
        body = None
        message = response.text.strip()[:200] or message
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body["error"]
        message = str(body.get("message") or message)
        if isinstance(body.get("details"), dict):
            details = body["details"]
    problems = details.get("errors")
    if isinstance(problems, list) and len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return ApiError(response.status_code, code, message, details)


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event."""

    id: str | None
    event: str
    data: str


def server_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Server-sent events from a stream's lines (the WHATWG event-stream format)."""
    ident: str | None = None
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(ident, event, "\n".join(data))
            event, data = "message", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            ident = value


class ApiClient:
    def __init__(self, api_url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=f"{self.api_url}/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"vigil-cli/{__version__}"},
            timeout=timeout_s,
        )

    @classmethod
    def connect(cls, api_url: str, token: str | None) -> ApiClient:
        return cls(api_url, admin_token(token))

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content: str | None = None,
        content_type: str | None = None,
    ) -> Any:
        """The decoded answer (None when empty); raises `CliFailure` for what the caller cannot fix by
        retrying now. `content` is sent as it is, as `content_type`, instead of `body` as JSON."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {"Content-Type": content_type} if content_type else None
        try:
            response = self._http.request(
                method, path, json=body, params=query, content=content, headers=headers
            )
        except httpx.ConnectError as exc:
            raise CliFailure(
                f"cannot connect to the Vigil API: is `vigil up` running at {self.api_url}?"
            ) from exc
        except httpx.TimeoutException as exc:
            raise CliFailure(
                f"the Vigil API at {self.api_url} did not answer in {self._timeout_s:g}s"
            ) from exc
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise CliFailure(f"cannot reach the Vigil API at {self.api_url}: {exc}") from exc
        self._check(response)
        if not response.content:
            return None
        return response.json()

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code == 401:
            raise CliFailure(
                f"the API refused the admin token ({api_error(response).message}); "
                "check --token, VIGIL_ADMIN_TOKEN or <data dir>/admin-token"
            )
        if response.is_error:
            raise api_error(response)

    def events(self, path: str, last_event_id: str | None = None) -> Iterator[ServerEvent]:
        """A server-sent event stream, from after `last_event_id`, until the server ends it; the
        transport's failures are raised as httpx raises them, for the caller to resume."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        # The server pings every 15 s: a minute of silence is a dead connection.
        timeout = httpx.Timeout(self._timeout_s, read=60.0)
        with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
            if response.is_error:
                response.read()
                self._check(response)
            yield from server_events(response.iter_lines())

    def call(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.send(method, path, body=body, params=params)
        except CliFailure as exc:
            fail(str(exc))

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.call("POST", path, body=body, params=params)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def find_project(self, ref: str) -> dict[str, Any] | None:
        projects: list[dict[str, Any]] = self.get("/projects")
        # Ids first: a project may be named like another project's id.
        for wanted in ("id", "name"):
            for project in projects:
                if project[wanted] == ref:
                    return project
        return None

    def project(self, ref: str) -> dict[str, Any]:
        """A project by id or by name."""
        found = self.find_project(ref)
        if found is None:
            fail(f"no project with id or name {ref!r}; `vigil project list` shows them")
        return found

    def in_project(
        self, project: str, method: str, path: str, *, body: Any = None, **options: Any
    ) -> tuple[dict[str, Any], Any]:
        """The project (by id or name) and the answer to `method` on `path` under it."""
        found = self.project(project)
        try:
            answer = self.send(method, f"/projects/{found['id']}{path}", body=body, **options)
        except CliFailure as exc:
            fail(str(exc))
        return found, answer

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def print_json(data: Any) -> None:
    # Plain print, not rich: scripts parse this, so no wrapping or colour codes.
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def project_call(
    api_url: str, token: str | None, project: str, method: str, path: str, **options: Any
) -> tuple[dict[str, Any], Any]:
    """One call under a project, on a connection of its own: see `ApiClient.in_project`."""
    with ApiClient.connect(api_url, token) as api:
        return api.in_project(project, method, path, **options)


def read_document(path: Path) -> Any:
    """A JSON or YAML file's content."""
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON: one loader for both
    except yaml.YAMLError as exc:
        fail(f"{path} is neither JSON nor YAML: {exc}")


def short_time(value: str | float | None) -> str:
    """An API time (ISO 8601, or epoch seconds) to the second, in UTC."""
    if not value:
        return ""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def table(columns: Sequence[str], rows: Iterable[Sequence[str | Text]], *, title: str | None = None) -> Table:
    """Cells are taken literally: names and messages from the API must not be read as rich markup."""
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        # Fold rather than cut: ids are copied from these tables into the next command.
        result.add_column(column, overflow="fold")
    for row in rows:
        result.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    return result


def say(message: str) -> None:
    """One result line (markup allowed; escape what came from the API), never wrapped."""
    console.print(message, soft_wrap=True, highlight=False)


def warn(message: str) -> None:
    errors.print(f"[yellow]{message}[/]", soft_wrap=True, highlight=False)
