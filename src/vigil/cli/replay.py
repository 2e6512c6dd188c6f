"""`vigil replay INCIDENT --target URL`: send an incident's archived requests again and confirm the
incident when its failure reproduces.

The requests are the samples in the evidence of the incident's request signals that carry HTTP
details (`RequestFact.request`): the first failing requests of an error-rate spike, the slowest ones
of a slow endpoint or a latency regression. Each is rebuilt against the target: the target's
scheme, host and port (and path, as a prefix) replace the original ones; method, path, query, the
archived (safe) headers and the body are kept; `X-Vigil-Replay: <incident id>` is added. Requests
are sent one after another, without following redirects.

Whether one request reproduces its failure:

* from an error signal: an answer with a 5xx status, or with the status it had when it was
  recorded; no answer within `--timeout`; or the connection dropped after the request was sent
  (the service crashed on it). Any other answer (2xx, 3xx, another 4xx) does not.
* from a latency signal: it took at least the signal's threshold (its p95 limit), whatever the
  status; a timeout counts when `--timeout` is at least that threshold.
* a request that is both is reproduced when either holds.

A connection that cannot be made (nothing listens, DNS, TLS) proves nothing about the service:
the request is `unreachable` and not counted. Requests whose body was not archived whole are not
replayed (with nothing else to send, the command says so). The incident is confirmed when at least one request was sent and at least half of
those sent failed again. The result is posted to the API (`POST .../incidents/{id}/replays`) and
becomes the incident's `confirmation`.

Exit codes: 0 confirmed, 1 not reproduced, 2 bad input (usage, unknown project or incident, an
invalid target, nothing replayable), 3 the replay could not be made (the API or the target
unreachable).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

import httpx
import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from vigil import __version__
from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiError,
    ApiUrlOption,
    CliFailure,
    JsonOption,
    TokenOption,
    admin_token,
    console,
    errors,
    print_json,
    say,
    table,
    warn,
)

if TYPE_CHECKING:  # vigil.detect is imported when a replay runs, not by every `vigil` command
    from vigil.detect.facts import HttpRequest

EXIT_CONFIRMED = 0
EXIT_NOT_REPRODUCED = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_DONE = 3

REPLAY_HEADER = "x-vigil-replay"

ERROR_SIGNALS = frozenset({"error_rate_spike"})
LATENCY_SIGNALS = frozenset({"slow_endpoint", "latency_regression"})

Outcome = Literal["reproduced", "not_reproduced", "unreachable", "skipped"]


class ReplayInputError(ValueError):
    """Input the replay cannot work with; the message says what to change."""


# --- what to replay -------------------------------------------------------------------------------


@dataclass
class Candidate:
    """One archived request and what would count as its failure again."""

    request: HttpRequest
    signals: list[str] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    error_status: int | None = None
    """Set when an error signal holds the request: the status it was recorded with (0: none)."""
    latency_ms: float | None = None
    """Set when a latency signal holds it: the least duration that counts as slow again."""

    @property
    def expected(self) -> str:
        parts = []
        if self.error_status is not None:
            recorded = self.error_status
            parts.append("5xx" if recorded == 0 or recorded >= 500 else f"5xx or {recorded}")
            parts.append("no answer")
        if self.latency_ms is not None:
            parts.append(f">= {self.latency_ms:.0f} ms")
        return " or ".join(parts)


def _sample_key(sample: dict[str, Any], request: HttpRequest) -> tuple[Any, ...]:
    if sample.get("trace_id") and sample.get("span_id"):
        return ("span", sample["trace_id"], sample["span_id"])
    return ("request", request.method, request.target, request.body)


def collect(incident: dict[str, Any]) -> tuple[list[Candidate], int]:
    """The incident's replayable requests, in signal order, each once; and how many samples carry
    HTTP details but cannot be replayed (their body was not archived whole)."""
    from vigil.detect.facts import HttpRequest

    found: dict[tuple[Any, ...], Candidate] = {}
    partial: set[tuple[Any, ...]] = set()
    for signal in incident.get("signals") or []:
        kind = str(signal.get("kind") or "")
        if kind not in ERROR_SIGNALS and kind not in LATENCY_SIGNALS:
            continue
        evidence = signal.get("evidence") or {}
        for sample in evidence.get("samples") or []:
            raw = sample.get("request") if isinstance(sample, dict) else None
            if not raw:
                continue
            try:
                request = HttpRequest.model_validate(raw)
            except ValidationError:
                continue
            key = _sample_key(sample, request)
            if request.body_truncated:
                partial.add(key)
                continue
            candidate = found.get(key)
            if candidate is None:
                candidate = found[key] = Candidate(request)
            if kind not in candidate.signals:
                candidate.signals.append(kind)
            fingerprint = signal.get("fingerprint")
            if fingerprint and fingerprint not in candidate.fingerprints:
                candidate.fingerprints.append(str(fingerprint))
            if kind in ERROR_SIGNALS:
                candidate.error_status = int(sample.get("status") or 0)
            else:
                threshold = float(signal.get("threshold") or 0.0)
                if threshold > 0:
                    least = candidate.latency_ms
                    candidate.latency_ms = threshold if least is None else min(least, threshold)
    return list(found.values()), len(partial - found.keys())


# --- how to send it -------------------------------------------------------------------------------


def parse_target(url: str) -> SplitResult:
    """The target as `scheme://host[:port][/prefix]`; ReplayInputError when it is not one."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ReplayInputError(f"{url!r} is not an http:// or https:// URL")
    if not parts.hostname:
        raise ReplayInputError(f"{url!r} has no host")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ReplayInputError(f"{url!r} has an invalid port") from exc
    if parts.query or parts.fragment:
        raise ReplayInputError(f"{url!r}: the target takes no query or fragment (the requests bring theirs)")
    if parts.username or parts.password:
        raise ReplayInputError(f"{url!r}: no credentials in the target URL")
    return parts


def target_url(request: HttpRequest, target: SplitResult) -> str:
    """The request's URL at the target: the target's scheme, host, port and path prefix, then the
    request's own path and query."""
    prefix = target.path.rstrip("/")
    path = request.path if request.path.startswith("/") else f"/{request.path}"
    url = f"{target.scheme}://{target.netloc}{prefix}{path}"
    return f"{url}?{request.query}" if request.query else url


def build_request(
    client: httpx.Client, request: HttpRequest, target: SplitResult, incident_id: str
) -> httpx.Request:
    """The archived request, rebuilt to be sent to the target."""
    from vigil.detect.facts import is_safe_header

    headers = {name: value for name, value in request.headers.items() if is_safe_header(name)}
    headers[REPLAY_HEADER] = incident_id
    content = request.body.encode("utf-8") if request.body is not None else None
    return client.build_request(request.method, target_url(request, target), headers=headers, content=content)


# --- did it fail again ----------------------------------------------------------------------------

Failure = Literal["timeout", "dropped", "unreachable"]


def decide(
    candidate: Candidate,
    *,
    status: int | None,
    duration_ms: float,
    failure: Failure | None = None,
    timeout_s: float | None = None,
) -> Outcome:
    """Whether one replayed request reproduced its failure (see the module docstring)."""
    if failure == "unreachable":
        return "unreachable"
    if candidate.error_status is not None:
        if failure in ("timeout", "dropped"):
            return "reproduced"
        if status is not None and (
            status >= 500 or (candidate.error_status and status == candidate.error_status)
        ):
            return "reproduced"
    if candidate.latency_ms is not None:
        took = duration_ms
        if failure == "timeout" and timeout_s is not None:
            took = max(took, timeout_s * 1000.0)
        if took >= candidate.latency_ms:
            return "reproduced"
    return "not_reproduced"


@dataclass
class Result:
    candidate: Candidate
    url: str
    outcome: Outcome
    status: int | None = None
    duration_ms: float | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "signal": "+".join(self.candidate.signals)[:64],
            "fingerprint": self.candidate.fingerprints[0] if self.candidate.fingerprints else None,
            "method": self.candidate.request.method,
            "target": self.candidate.request.target,
            "expected": self.candidate.expected[:200],
            "status": self.status,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "error": None if self.error is None else self.error[:500],
            "outcome": self.outcome,
        }


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def send_one(
    client: httpx.Client, candidate: Candidate, target: SplitResult, incident_id: str, timeout_s: float
) -> Result:
    request = build_request(client, candidate.request, target, incident_id)
    url = str(request.url)
    started = time.perf_counter()
    status: int | None = None
    failure: Failure | None = None
    error: str | None = None
    try:
        response = client.send(request)
        status = response.status_code
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
        failure, error = "unreachable", _describe(exc)
    except httpx.TimeoutException as exc:  # read, write or pool: the service took the request
        failure, error = "timeout", f"no answer in {timeout_s:g} s ({type(exc).__name__})"
    except httpx.TransportError as exc:  # the connection dropped while the request was handled
        failure, error = "dropped", _describe(exc)
    duration_ms = (time.perf_counter() - started) * 1000.0
    outcome = decide(candidate, status=status, duration_ms=duration_ms, failure=failure, timeout_s=timeout_s)
    return Result(candidate, url, outcome, status, None if failure == "unreachable" else duration_ms, error)


def replay_all(
    candidates: Iterable[Candidate], target: SplitResult, incident_id: str, timeout_s: float
) -> list[Result]:
    """Send each candidate to the target, one after another."""
    headers = {"user-agent": f"vigil-replay/{__version__}"}
    with httpx.Client(timeout=timeout_s, follow_redirects=False, headers=headers) as client:
        return [send_one(client, c, target, incident_id, timeout_s) for c in candidates]


@dataclass(frozen=True)
class Verdict:
    reproduced: bool
    attempted: int
    failed: int


def verdict(results: Iterable[Result]) -> Verdict:
    """Confirmed when at least one request was sent and at least half of those sent failed again."""
    outcomes = [r.outcome for r in results]
    attempted = sum(o in ("reproduced", "not_reproduced") for o in outcomes)
    failed = outcomes.count("reproduced")
    return Verdict(attempted > 0 and failed * 2 >= attempted, attempted, failed)


# --- the command ----------------------------------------------------------------------------------


def _exit(code: int, message: str) -> typer.Exit:
    errors.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def _find_incident(api: ApiClient, incident_id: str, project: str | None) -> tuple[str, dict[str, Any]]:
    projects: list[dict[str, Any]] = api.send("GET", "/projects")
    if project is not None:
        wanted = next((p for p in projects if p["id"] == project), None) or next(
            (p for p in projects if p["name"] == project), None
        )
        if wanted is None:
            raise _exit(
                EXIT_BAD_INPUT, f"no project with id or name {project!r}; `vigil project list` shows them"
            )
        projects = [wanted]
    for found in projects:
        try:
            incident: dict[str, Any] = api.send("GET", f"/projects/{found['id']}/incidents/{incident_id}")
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        return found["id"], incident
    where = f"project {project!r}" if project is not None else "any project"
    raise _exit(EXIT_BAD_INPUT, f"no incident {incident_id!r} in {where}")


def _got(result: Result) -> Text:
    parts = []
    if result.status is not None:
        parts.append(str(result.status))
    if result.duration_ms is not None:
        parts.append(f"{result.duration_ms:.0f} ms")
    if result.error:
        parts.append(result.error)
    return Text(", ".join(parts))


_OUTCOME_STYLE = {
    "reproduced": ("failed again", "red"),
    "not_reproduced": ("not reproduced", "green"),
    "unreachable": ("unreachable", "yellow"),
    "skipped": ("skipped", "yellow"),
}


def _results_table(results: list[Result], title: str) -> Table:
    rows: list[list[str | Text]] = []
    for i, r in enumerate(results, 1):
        label, style = _OUTCOME_STYLE[r.outcome]
        rows.append(
            [
                str(i),
                ", ".join(r.candidate.signals),
                f"{r.candidate.request.method} {r.url}",
                r.candidate.expected,
                _got(r),
                Text(label, style=style),
            ]
        )
    return table(["#", "SIGNAL", "REQUEST", "FAILS IF", "GOT", "RESULT"], rows, title=title)


def replay(
    incident: Annotated[str, typer.Argument(metavar="INCIDENT", help="Incident id (inc_...).")],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="Where to send the requests, as http(s)://host:port: it replaces the original scheme, "
            "host and port; a path in it is put before the requests' paths.",
            show_default=False,
        ),
    ],
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="Project id or name (default: look in every project)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Seconds to wait for each answer.")
    ] = 30.0,
    max_requests: Annotated[
        int, typer.Option("--max-requests", min=1, max=1000, help="Send at most this many requests.")
    ] = 20,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the requests that would be sent; send nothing.")
    ] = False,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Send an incident's archived requests again, to --target; confirm the incident when the failure
    reproduces. Exit 0 confirmed, 1 not reproduced, 2 bad input, 3 the replay could not be made."""
    if not incident.strip() or any(c in incident for c in "/?#%") or incident != incident.strip():
        raise typer.BadParameter(f"{incident!r} is not an incident id", param_hint="INCIDENT")
    try:
        parsed = parse_target(target)
    except ReplayInputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--target") from exc
    try:
        secret = admin_token(token)
    except typer.Exit:
        raise typer.Exit(EXIT_BAD_INPUT) from None
    with ApiClient(api_url, secret) as api:
        try:
            project_id, found = _find_incident(api, incident, project)
        except CliFailure as exc:
            raise _exit(EXIT_NOT_DONE, str(exc)) from exc
        candidates, partial = collect(found)
        if not candidates:
            why = (
                f"{partial} archived request(s) have a body that was not kept whole"
                if partial
                else "none of its signals' samples carries HTTP request details (server spans or "
                "records need url.full, http.url, url.path or http.target; see docs/cli.md)"
            )
            raise _exit(EXIT_BAD_INPUT, f"incident {incident} has no replayable request: {why}")
        if len(candidates) > max_requests:
            warn(f"{len(candidates)} replayable requests; sending the first {max_requests} (--max-requests)")
            candidates = candidates[:max_requests]
        if dry_run:
            planned = [Result(c, target_url(c.request, parsed), "skipped") for c in candidates]
            if as_json:
                print_json([r.as_json() | {"url": r.url} for r in planned])
            else:
                console.print(_results_table(planned, f"Would replay {incident} against {target}"))
                say(f"dry run: {len(planned)} request(s) not sent")
            return
        results = replay_all(candidates, parsed, incident, timeout)
        decision = verdict(results)
        if not as_json:
            console.print(_results_table(results, f"Replay of {incident} against {target}"))
        if decision.attempted == 0:
            raise _exit(
                EXIT_NOT_DONE,
                f"no request reached {target}: {results[0].error or 'unreachable'}; nothing was recorded",
            )
        body = {
            "target": target,
            "reproduced": decision.reproduced,
            "attempted": decision.attempted,
            "failed": decision.failed,
            "results": [r.as_json() for r in results],
        }
        try:
            stored = api.send("POST", f"/projects/{project_id}/incidents/{incident}/replays", body=body)
        except CliFailure as exc:
            raise _exit(EXIT_NOT_DONE, f"the replay ran but could not be recorded: {exc}") from exc
    if as_json:
        print_json(stored)
    elif decision.reproduced:
        say(
            f"[red]confirmed[/]: {decision.failed} of {decision.attempted} replayed request(s) failed again; "
            f"incident {escape(incident)} is marked confirmed"
        )
    else:
        say(
            f"[green]not reproduced[/]: {decision.failed} of {decision.attempted} replayed request(s) "
            f"failed again; incident {escape(incident)} is marked not confirmed"
        )
    raise typer.Exit(EXIT_CONFIRMED if decision.reproduced else EXIT_NOT_REPRODUCED)
