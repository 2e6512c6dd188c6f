"""Citations of investigations, shown again: any kind (record, query, template, signal, incident,
replay, evidence) by its id. A key of the project or the admin token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from vigil.api.alerts import AlertCallers
from vigil.api.errors import API_ERRORS
from vigil.api.records import project_caller
from vigil.detect.archive import EvidenceArchive
from vigil.investigate.citations import CitationStore, resolve
from vigil.investigate.remote import RecordsWindow
from vigil.store.repo import Store


def citations_router(
    store: Store, callers: AlertCallers, recent: RecordsWindow | None, evidence: EvidenceArchive | None
) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1",
        tags=["citations"],
        responses=API_ERRORS,
        dependencies=[Depends(project_caller(callers))],
    )
    citations = CitationStore(store)

    @router.get("/projects/{project_id}/citations/{citation_id}")
    async def get_citation(
        project_id: str, citation_id: Annotated[str, Path(min_length=3, max_length=200)]
    ) -> dict[str, Any]:
        """What the citation points at: a stored record or query result, a template with its count,
        a signal with its incident and evidence, an incident, a replay, or evidence documents."""
        await store.get_project(project_id)
        return await resolve(
            citation_id,
            project_id,
            store=store,
            citations=citations,
            templates=recent.templates if recent is not None else None,
            evidence=evidence,
        )

    return router
