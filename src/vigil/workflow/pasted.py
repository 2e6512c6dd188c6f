"""Pasted logs: lines as people copy them from a terminal, a file or a log viewer, turned into
records (timestamp, severity and service where recognisable), redacted before anything reads them,
and analysed by the rules engine with the project's runbooks.

A line is a JSON object (structured logs: message, level, service and time under their usual
names) or text: an optional timestamp (ISO 8601, or syslog's `Dec  6 10:00:00 host`), then a
level word early in the line (`ERROR`, `[warn]`, PostgreSQL's `FATAL:`), and a service where the
line names one (`service=checkout`, syslog's `program[pid]:`). Indented lines, `Caused by:` and
Python's traceback lines continue the record above them (a stack trace is one record).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from vigil.agents.builtin.evidence import build_evidence
from vigil.agents.builtin.models import Analysis, Evidence
from vigil.agents.builtin.recommend import recommend
from vigil.agents.builtin.rules import RulesEngine
from vigil.errors import PayloadTooLarge, ValidationFailed
from vigil.pipeline.redact import RedactionSpec, Redactor
from vigil.pipeline.templates import TemplateMiner
from vigil.records import FlatRecord
from vigil.severity import SEVERITY_BY_NAME
from vigil.workflow.runbooks import Runbook

MAX_BYTES = 4 * 1024 * 1024
MAX_LINES = 100_000
MAX_RECORD_CHARS = 16_384
"""A record (a line and its continuation lines) is cut here: a stack trace's head says enough."""
DEFAULT_SERVICE = "pasted"
_LEVELS = SEVERITY_BY_NAME | {
    "ERR": 17,
    "SEVERE": 17,
    "PANIC": 21,
    "EMERG": 21,
    "ALERT": 21,
    "CRIT": 21,
    "NOTICE": 9,
    "LOG": 9,
    "DBG": 5,
    "WRN": 13,
    "INF": 9,
    "EROR": 17,
    "FTL": 21,
}
_UPPER_ONLY = frozenset({"LOG", "ALERT", "NOTICE"})
_ISO = re.compile(
    r"^\[?(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)\]?\s*"
)
_SYSLOG = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}) (?P<host>\S{1,100}) (?P<program>[\w.@/-]{1,100})"
    r"(?:\[\d{1,10}\])?: "
)
_LEVEL = re.compile(r"\b(?P<level>[A-Za-z]{3,8})\b(?=[\]:|\s]|$)")
_SERVICE = re.compile(r"\b(?:service(?:\.name)?|svc|app)[=:]\s?\"?(?P<service>[\w.-]{1,100})")
_CONTINUATION = re.compile(r"^(?:\s|Caused by:|Traceback \(most recent call last\)|\.\.\. \d+ more)")
_EXCEPTION_HEAD = re.compile(r"^[\w$.]{1,200}(?:Exception|Error|Throwable)(?::|$)")
"""The first line of a stack trace under a log line (Logback, log4j): no timestamp of its own."""
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_JSON_MESSAGE = ("message", "msg", "body", "log", "event")
_JSON_LEVEL = ("level", "severity", "lvl", "levelname", "log.level", "severity_text")
_JSON_SERVICE = ("service", "service.name", "service_name", "app", "logger", "container_name")
_JSON_TIME = ("timestamp", "time", "ts", "@timestamp", "t")


def decode(body: bytes) -> str:
    """The pasted text; a clear error for what is not lines of text."""
    if len(body) > MAX_BYTES:
        raise PayloadTooLarge(f"pasted logs are limited to {MAX_BYTES:,} bytes; got {len(body):,}")
    if not body.strip():
        raise ValidationFailed("body: no log lines were sent (the body is empty or blank)")
    if b"\x00" in body:
        raise ValidationFailed("body: binary data, not text; send log lines as UTF-8 text/plain")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"body: not UTF-8 text (invalid byte at offset {exc.start})") from exc
    controls = sum(1 for c in text[:65536] if ord(c) < 32 and c not in "\t\r\n\f")
    if controls > len(text[:65536]) // 10:
        raise ValidationFailed("body: binary data, not text; send log lines as UTF-8 text/plain")
    return text


def parse(text: str, default_service: str = DEFAULT_SERVICE, now: datetime | None = None) -> list[FlatRecord]:
    """The records of pasted lines, in order."""
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise PayloadTooLarge(f"pasted logs are limited to {MAX_LINES:,} lines; got {len(lines):,}")
    moment = now or datetime.now(UTC)
    records: list[FlatRecord] = []
    stamped = False  # whether the record above came from a line with a timestamp
    for line in lines:
        if not line.strip():
            continue
        if records and (_CONTINUATION.match(line) or (stamped and _EXCEPTION_HEAD.match(line))):
            body = records[-1]["body"]
            if len(body) < MAX_RECORD_CHARS:
                records[-1]["body"] = (body + "\n" + line.rstrip())[:MAX_RECORD_CHARS]
            continue
        records.append(_record(line.rstrip()[:MAX_RECORD_CHARS], default_service, moment))
        stamped = bool(_ISO.match(line) or _SYSLOG.match(line))
    if not records:
        raise ValidationFailed("body: no log lines were sent (only blank lines)")
    return records


def _record(line: str, default_service: str, now: datetime) -> FlatRecord:
    if line.startswith("{"):
        structured = _structured(line, default_service, now)
        if structured is not None:
            return structured
    rest, when, service = line, now, default_service
    iso = _ISO.match(rest)
    syslog = None if iso else _SYSLOG.match(rest)
    if iso:
        when = _iso_time(iso.group("ts")) or now
        rest = rest[iso.end() :]
    elif syslog:
        when = _syslog_time(syslog.group("ts"), now)
        service = syslog.group("program")
        rest = rest[syslog.end() :]
    found = _SERVICE.search(line)
    if found:
        service = found.group("service")
    return _flat(rest or line, _level_of(rest[:48]), service, when)


def _structured(line: str, default_service: str, now: datetime) -> FlatRecord | None:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    message = _first(data, _JSON_MESSAGE)
    level = _first(data, _JSON_LEVEL)
    service = _first(data, _JSON_SERVICE)
    stamp = _first(data, _JSON_TIME)
    when = (_iso_time(stamp) if isinstance(stamp, str) else None) or now
    number = _LEVELS.get(str(level).upper(), 0) if level is not None else 0
    if isinstance(level, int) and 1 <= level <= 24:
        number = level
    body = line if message is None else str(message)
    return _flat(body, number, str(service) if service else default_service, when)


def _first(data: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = data.get(key)
        if isinstance(value, dict):  # {"log": {"level": ...}} (ECS) or {"service": {"name": ...}}
            value = value.get("name") or value.get("level")
        if value not in (None, ""):
            return value
    return None


def _flat(body: str, severity: int, service: str, when: datetime) -> FlatRecord:
    return {
        "resourceAttributes": {"service.name": service},
        "severityNumber": severity,
        "body": body,
        "attributes": {},
        "traceId": "",
        "timestamp": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _level_of(head: str) -> int:
    for found in _LEVEL.finditer(head):
        word = found.group("level")
        if word.upper() in _UPPER_ONLY and not word.isupper():
            continue  # "Log in failed", "Alert sent": English, not PostgreSQL's or syslog's level
        number = _LEVELS.get(word.upper())
        if number is not None:
            return number
    return 0


def _iso_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace(",", ".").replace(" ", "T", 1))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _syslog_time(text: str, now: datetime) -> datetime:
    month, day, clock = text.split()
    hours, minutes, seconds = (int(p) for p in clock.split(":"))
    try:
        return datetime(now.year, _MONTHS[month], int(day), hours, minutes, seconds, tzinfo=UTC)
    except (KeyError, ValueError):
        return now


def prepare(records: list[FlatRecord], redaction: RedactionSpec | None = None) -> list[FlatRecord]:
    """Redacted records with their templates: nothing after this sees an unredacted line."""
    redactor = Redactor(redaction or RedactionSpec())
    miner = TemplateMiner()
    out = []
    for record in records:
        clean = redactor.redact_record(record)
        match = miner.mine(clean["body"])
        clean["template_id"] = match.template_id
        out.append(clean)
    for record in out:  # clusters merge and generalize as later lines join them
        record["template_id"] = miner.resolve(record["template_id"])
        record["template"] = miner.template(record["template_id"]) or record["body"]
    return out


def evidence_of(project_id: str, request_id: str, records: list[FlatRecord]) -> Evidence:
    return build_evidence(project_id, request_id, records)


def analyse(evidence: Evidence, runbooks: Sequence[Runbook]) -> Analysis:
    """The rules engine's analysis, with the configured runbook that fits."""
    return recommend(RulesEngine().analyze_sync(evidence), runbooks)
