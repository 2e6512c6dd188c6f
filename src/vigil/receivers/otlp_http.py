"""OTLP/HTTP receiver (`/v1/logs` and `/v1/traces`, protobuf or JSON, gzip) and the agents' data
plane."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import orjson
from fastapi import FastAPI, Header, Request, Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from vigil import __version__
from vigil.api.errors import ORJSONResponse, error_responses, install_error_handlers
from vigil.api.probes import add_probes
from vigil.errors import ClientGone, InvalidPayload, PayloadTooLarge, ValidationFailed
from vigil.otlp import JSON, PROTOBUF, SIGNALS, Signal
from vigil.outputs import AgentOutputIn
from vigil.receivers.agent_output import OutputIntake
from vigil.receivers.ingest import Ingestor
from vigil.receivers.keys import KeyResolver, key_from_headers

ApiKeyHeader = Annotated[str | None, Header(alias="X-API-Key")]
AuthorizationHeader = Annotated[str | None, Header(alias="Authorization")]


async def read_body(request: Request, limit: int, claim: Callable[[int], None] | None = None) -> bytes:
    """Read at most `limit` bytes: a too-large body is refused before it is held in memory, and
    `claim` is told of every chunk before it is kept (it may refuse it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            if claim is not None:
                claim(len(chunk))
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise ClientGone("the client closed the connection before its body was read") from exc
    # the chunks are held twice while joined
    if claim is not None and len(chunks) > 1:
        claim(size)
    return b"".join(chunks)


def _add_export_route(
    app: FastAPI, signal: Signal, ingestor: Ingestor, keys: KeyResolver, max_body_bytes: int
) -> None:
    empty_response: bytes = signal.response().SerializeToString()
    path = f"/v1/{signal.name}"

    async def accept(request: Request, x_api_key: str | None, authorization: str | None) -> Response:
        project_id = await keys.project_for(key_from_headers(x_api_key, authorization))
        content_type = request.headers.get("content-type")
        async with ingestor.admit(signal, "http") as claim:
            body = await read_body(request, max_body_bytes, claim.take)
            await ingestor.export(
                signal,
                project_id,
                body,
                content_type=content_type,
                content_encoding=request.headers.get("content-encoding"),
                claim=claim,
            )
        if content_type and content_type.split(";")[0].strip().lower() == JSON:
            return Response(b"{}", media_type=JSON)
        return Response(empty_response, media_type=PROTOBUF)

    async def export(
        request: Request, x_api_key: ApiKeyHeader = None, authorization: AuthorizationHeader = None
    ) -> Response:
        return await accept(request, x_api_key, authorization)

    async def export_undocumented(request: Request) -> Response:
        headers = request.headers
        return await accept(request, headers.get("x-api-key"), headers.get("authorization"))

    app.add_api_route(
        path,
        export,
        methods=["POST"],
        name=f"export_{signal.name}",
        summary=f"OTLP/HTTP {signal.name} export (protobuf or JSON)",
        responses={
            200: {
                "description": "Accepted: an empty Export response in the request's encoding.",
                "content": {PROTOBUF: {}, JSON: {"schema": {"type": "object"}}},
            }
        },
    )
    # Exports are answered by a plain route ahead of the documented one: FastAPI's parameter
    # solving and route machinery cost about 100 µs per request, as much as a small export's
    # own work. The app's exception handlers still answer its errors.
    app.router.routes.insert(0, Route(path, export_undocumented, methods=["POST"], include_in_schema=False))


def create_receiver_app(
    ingestor: Ingestor,
    outputs: OutputIntake,
    keys: KeyResolver,
    *,
    max_body_bytes: int,
    ready: Callable[[], Awaitable[bool]],
) -> FastAPI:
    app = FastAPI(
        title="Vigil receiver",
        version=__version__,
        docs_url="/docs",
        redoc_url=None,
        responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503),
    )
    install_error_handlers(app)

    for signal in SIGNALS:
        _add_export_route(app, signal, ingestor, keys, max_body_bytes)

    @app.post("/internal/agent-output", summary="An agent's output for a batch (the agent protocol)")
    async def agent_output(
        request: Request,
        x_api_key: ApiKeyHeader = None,
        authorization: AuthorizationHeader = None,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> ORJSONResponse:
        project_id = await keys.project_for(key_from_headers(x_api_key, authorization))
        raw = await read_body(request, max_body_bytes)
        try:
            body = AgentOutputIn.model_validate(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise InvalidPayload(f"body is not valid JSON: {exc}") from exc
        except ValidationError as exc:
            problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            first = problems[0]
            raise ValidationFailed(
                f"{'.'.join(map(str, first['loc']))}: {first['msg']}", details={"errors": problems}
            ) from exc
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
            raise InvalidPayload("Idempotency-Key must be 1-200 characters")
        envelope = await outputs.accept(project_id, body, idempotency_key)
        return ORJSONResponse({"id": envelope.id, "request_id": envelope.request_id, "status": "accepted"})

    add_probes(app, ready)
    return app
