"""A project's recent records (the investigation window): counts first, then the newest records,
redacted. A key of the project or the admin token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from vigil.api.alerts import AlertCallers
from vigil.api.errors import API_ERRORS
from vigil.errors import VigilError
from vigil.investigate.records import MAX_QUERY_LIMIT, RecordQuery, RecordsAnswer
from vigil.investigate.remote import RecordsWindow
from vigil.store.repo import Store


class WindowUnavailable(VigilError):
    code = "recent_records_unavailable"
    status = 503


def project_caller(callers: AlertCallers) -> Any:
    """A dependency: a key of the path's project, or the admin token."""

    async def check(
        project_id: str,
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        await callers.check(project_id, x_api_key, authorization)

    return check


def record_filters(
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    severity: str | None = None,
    template_id: str | None = None,
    trace_id: str | None = None,
    grep: str | None = None,
) -> dict[str, Any]:
    """The query parameters both record routes filter by."""
    return {
        "service": service,
        "since": since,
        "until": until,
        "severity": severity,
        "template_id": template_id,
        "trace_id": trace_id,
        "grep": grep,
    }


def records_router(store: Store, callers: AlertCallers, recent: RecordsWindow | None) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1",
        tags=["records"],
        responses=API_ERRORS,
        dependencies=[Depends(project_caller(callers))],
    )

    async def answer(project_id: str, params: dict[str, Any]) -> RecordsAnswer:
        await store.get_project(project_id)
        if recent is None:
            raise WindowUnavailable(
                "recent records are kept where the pipeline router runs; this process does not run it"
            )
        try:
            query = RecordQuery.model_validate({k: v for k, v in params.items() if v is not None})
        except ValidationError as exc:
            # the query's fields are the route's parameters: answered like any invalid parameter
            raise RequestValidationError(
                [
                    {**e, "loc": ("query", *e["loc"])}
                    for e in exc.errors(include_url=False, include_context=False)
                ]
            ) from None
        return await recent.query(project_id, query)

    @router.get("/projects/{project_id}/records", response_model=RecordsAnswer)
    async def list_records(
        project_id: str,
        filters: Annotated[dict[str, Any], Depends(record_filters)],
        limit: Annotated[int, Query(ge=0, le=MAX_QUERY_LIMIT)] = 100,
    ) -> RecordsAnswer:
        """The project's recent records, newest first, redacted: counts by service, severity and
        template over every match first, then up to `limit` records. `severity` is the least
        severity (a name or 1-24); `grep` an RE2 pattern searched in the redacted body."""
        return await answer(project_id, {**filters, "limit": limit})

    @router.get("/projects/{project_id}/records/summary")
    async def records_summary(
        project_id: str, filters: Annotated[dict[str, Any], Depends(record_filters)]
    ) -> dict[str, Any]:
        """Only the counts of the matching recent records and what the window holds."""
        result = await answer(project_id, {**filters, "limit": 0})
        return result.model_dump(mode="json", exclude={"records"})

    return router
