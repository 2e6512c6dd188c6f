"""One error shape everywhere: `{"error": code, "message": ..., "details": ...}`."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from vigil.errors import TransientError, VigilError

log = logging.getLogger(__name__)


class ORJSONResponse(JSONResponse):
    """JSON rendered by orjson (datetimes, UUIDs and speed included)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "overloaded",
    503: "unavailable",
}


class ErrorOut(BaseModel):
    """Every error answer of Vigil's HTTP APIs."""

    error: str = Field(description="A stable code: validation_error, not_found, unauthorized, ...")
    message: str = Field(description="What went wrong, for people; names the field when one is wrong.")
    details: dict[str, Any] = Field(description="Structured context, e.g. `errors` with each field's `loc`.")


_DESCRIPTIONS = {
    400: "The request is malformed (a body that does not parse, a bad header).",
    401: "Missing or invalid credentials.",
    403: "Not allowed.",
    404: "No such resource.",
    409: "Conflicts with what exists.",
    413: "The body is larger than the limit.",
    415: "The content type is not one this route takes.",
    422: "A field is invalid; `message` and `details.errors[].loc` name it.",
    429: "Overloaded: retry after `Retry-After` seconds.",
    503: "Not ready (the bus is unreachable): retry after `Retry-After` seconds.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring the error answers a route or app may give."""
    return {status: {"model": ErrorOut, "description": _DESCRIPTIONS[status]} for status in statuses}


API_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
"""What any management API route may answer besides its success."""


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> ORJSONResponse:
    return ORJSONResponse(
        {"error": code, "message": message, "details": details or {}}, status_code=status, headers=headers
    )


def vigil_error_response(exc: VigilError) -> ORJSONResponse:
    headers = None
    if isinstance(exc, TransientError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)


def is_contention(exc: OperationalError) -> bool:
    """SQLite's "database is locked" (or "busy"): the write lock was not free within busy_timeout."""
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VigilError)
    async def _vigil(_: Request, exc: VigilError) -> ORJSONResponse:
        return vigil_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> ORJSONResponse:
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        loc = first["loc"][1:] if first["loc"][:1] == ["body"] else first["loc"]
        where = ".".join(str(p) for p in loc)  # a field may itself be named `body` (filter.body)
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
        return error_response(422, "validation_error", message, {"errors": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        code = _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> ORJSONResponse:
        # nobody is left to read an answer: not an error of Vigil's
        log.debug("client closed the connection mid-request", extra={"path": request.url.path})
        return error_response(499, "client_closed_request", "the client closed the connection")

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> ORJSONResponse:
        if not is_contention(exc):
            return await _unexpected(request, exc)
        # SQLite's one writer stayed busy past the wait: an overload the client may retry
        log.warning("database busy; answered 503", extra={"path": request.url.path})
        return vigil_error_response(TransientError("the database is busy; retry", retry_after=1.0))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ORJSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
