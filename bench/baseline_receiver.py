"""The straightforward OTLP/HTTP logs receiver: the design users would write instead of Vigil.

FastAPI app with `POST /v1/logs`; the protobuf request is parsed and turned into dicts with
`MessageToDict`, every record is flattened and validated as a pydantic model, and stored with one
`INSERT` per record into SQLite (default settings: rollback journal, synchronous=FULL) with one
commit per request. The handler is `async def` and calls sqlite3 directly, as most examples do.

Usage::

    .venv/bin/python bench/baseline_receiver.py --port 4319 --db /tmp/baseline.db
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    resource_attributes TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    severity_number INTEGER NOT NULL,
    severity_text TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL
)
"""

INSERT = (
    "INSERT INTO logs (service, resource_attributes, timestamp, severity_number, severity_text, body,"
    " attributes, trace_id, span_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class LogRecordIn(BaseModel):
    service: str
    resource_attributes: dict[str, Any]
    timestamp: str
    severity_number: int = 0
    severity_text: str = ""
    body: str = ""
    attributes: dict[str, Any]
    trace_id: str = ""
    span_id: str = ""


def plain(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue as MessageToDict renders it ({"stringValue": "x"}) to a plain value."""
    if not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "kvlistValue":
        return {kv["key"]: plain(kv.get("value", {})) for kv in inner.get("values", [])}
    if kind == "arrayValue":
        return [plain(v) for v in inner.get("values", [])]
    return inner


def flat_attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: plain(kv.get("value", {})) for kv in pairs}


def decode(body: bytes) -> dict[str, Any]:
    message = ExportLogsServiceRequest()
    message.ParseFromString(body)
    data: dict[str, Any] = MessageToDict(message)
    return data


def validate(data: dict[str, Any]) -> list[LogRecordIn]:
    records = []
    for resource_logs in data.get("resourceLogs", []):
        resource = flat_attributes(resource_logs.get("resource", {}).get("attributes", []))
        for scope_logs in resource_logs.get("scopeLogs", []):
            for raw in scope_logs.get("logRecords", []):
                records.append(
                    LogRecordIn(
                        service=str(resource.get("service.name", "")),
                        resource_attributes=resource,
                        timestamp=raw.get("timeUnixNano", "0"),
                        severity_number=_severity_number(raw.get("severityNumber")),
                        severity_text=raw.get("severityText", ""),
                        body=str(plain(raw.get("body", {})) or ""),
                        attributes=flat_attributes(raw.get("attributes", [])),
                        trace_id=raw.get("traceId", ""),
                        span_id=raw.get("spanId", ""),
                    )
                )
    return records


def insert(db: sqlite3.Connection, records: list[LogRecordIn]) -> None:
    for record in records:
        db.execute(
            INSERT,
            (
                record.service,
                json.dumps(record.resource_attributes),
                record.timestamp,
                record.severity_number,
                record.severity_text,
                record.body,
                json.dumps(record.attributes),
                record.trace_id,
                record.span_id,
            ),
        )


def open_db(db_path: str) -> sqlite3.Connection:
    db = sqlite3.connect(db_path)
    db.execute(SCHEMA)
    db.commit()
    return db


def create_app(db_path: str) -> FastAPI:
    db = open_db(db_path)
    app = FastAPI()
    empty = ExportLogsServiceResponse().SerializeToString()

    @app.post("/v1/logs")
    async def export_logs(request: Request) -> Response:
        records = validate(decode(await request.body()))
        insert(db, records)
        db.commit()
        return Response(empty, media_type="application/x-protobuf")

    return app


def breakdown(bodies: list[bytes], db_path: str) -> dict[str, float]:
    """Where a request's time goes: the handler's steps timed one by one, in ms per request."""
    db = open_db(db_path)
    totals = {"parse + MessageToDict": 0.0, "flatten + pydantic": 0.0, "INSERTs": 0.0, "commit": 0.0}
    for body in bodies:
        t0 = time.perf_counter()
        data = decode(body)
        t1 = time.perf_counter()
        records = validate(data)
        t2 = time.perf_counter()
        insert(db, records)
        t3 = time.perf_counter()
        db.commit()
        t4 = time.perf_counter()
        for key, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[key] += seconds
    db.close()
    return {key: seconds / len(bodies) * 1000 for key, seconds in totals.items()}


_SEVERITY_NUMBERS = {
    "SEVERITY_NUMBER_DEBUG": 5,
    "SEVERITY_NUMBER_INFO": 9,
    "SEVERITY_NUMBER_WARN": 13,
    "SEVERITY_NUMBER_ERROR": 17,
    "SEVERITY_NUMBER_FATAL": 21,
}


def _severity_number(value: Any) -> int:
    """MessageToDict writes enums by name ("SEVERITY_NUMBER_ERROR")."""
    if isinstance(value, int):
        return value
    return _SEVERITY_NUMBERS.get(value or "", 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4319)
    parser.add_argument("--db", default="baseline.db")
    args = parser.parse_args()
    uvicorn.run(create_app(args.db), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
