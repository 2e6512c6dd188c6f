"""Incidents, their replays (the latest is the incident's `confirmation`), the evidence archived for
their signals, and what the LLM engine spent on them."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from vigil.agents.builtin.budget import TokenBudget
from vigil.api.schemas import Confirmation, IncidentReplayIn, IncidentReplayOut
from vigil.detect.archive import SEGMENT, EvidenceArchive
from vigil.store.models import IncidentReplay
from vigil.store.repo import Store

log = logging.getLogger(__name__)


def _replay_out(row: IncidentReplay) -> IncidentReplayOut:
    return IncidentReplayOut.model_validate(row, from_attributes=True)


def _confirmation(row: IncidentReplay | None) -> dict[str, Any] | None:
    """An incident's `confirmation`: its latest replay, or None when it was never replayed."""
    if row is None:
        return None
    return Confirmation(
        confirmed=row.reproduced,
        at=row.at,
        target=row.target,
        attempted=row.attempted,
        failed=row.failed,
        replay_id=row.id,
    ).model_dump(mode="json")


def incidents_router(store: Store, evidence: EvidenceArchive | None, budget: TokenBudget | None) -> APIRouter:
    router = APIRouter()

    @router.get("/projects/{project_id}/incidents", tags=["incidents"])
    async def list_incidents(
        project_id: str,
        status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[
            datetime | None, Query(description="Page back: incidents updated before this time.")
        ] = None,
        before_id: Annotated[
            str | None, Query(max_length=200, description="With `before`: the id of the last incident seen.")
        ] = None,
    ) -> list[dict[str, Any]]:
        """Incidents, most recently updated first, without their signals and timeline."""
        await store.get_project(project_id)
        rows = await store.list_incidents(
            project_id, status=status, limit=limit, before=before, before_id=before_id
        )
        summary = (
            "id",
            "title",
            "severity",
            "status",
            "services",
            "opened_at",
            "updated_at",
            "resolved_at",
            "reopened",
        )
        replays = await store.latest_incident_replays(project_id, [row.id for row in rows])
        return [
            {
                **{key: row.body.get(key) for key in summary},
                "confirmation": _confirmation(replays.get(row.id)),
                # the stored order's own key: pass both to page back past this incident
                "page": {"before": row.updated_at.isoformat(), "before_id": row.id},
            }
            for row in rows
        ]

    @router.get("/projects/{project_id}/incidents/{incident_id}", tags=["incidents"])
    async def get_incident(
        project_id: str,
        incident_id: str,
        evidence_limit: Annotated[int, Query(ge=0, le=100)] = 5,
    ) -> dict[str, Any]:
        """One incident with its signals (each with its evidence) and its timeline, and under
        `evidence` the archived documents of each signal's fingerprint, newest first."""
        body: dict[str, Any] = (await store.get_incident(project_id, incident_id)).body
        replays = await store.latest_incident_replays(project_id, [incident_id])
        body["confirmation"] = _confirmation(replays.get(incident_id))  # the latest replay, or null
        fingerprints = list(dict.fromkeys(s["fingerprint"] for s in body.get("signals", [])))
        body["evidence"] = {}
        if evidence is not None and evidence_limit and fingerprints:
            found = await asyncio.gather(
                *(evidence.get(project_id, fp, evidence_limit) for fp in fingerprints),
                return_exceptions=True,
            )
            for fp, documents in zip(fingerprints, found, strict=True):
                if isinstance(documents, BaseException):
                    log.warning("evidence unreadable", extra={"fingerprint": fp, "error": str(documents)})
                    body.setdefault("evidence_errors", {})[fp] = str(documents)
                else:
                    body["evidence"][fp] = documents
        return body

    @router.post(
        "/projects/{project_id}/incidents/{incident_id}/replays",
        status_code=201,
        response_model=IncidentReplayOut,
        tags=["incidents"],
    )
    async def add_incident_replay(project_id: str, incident_id: str, body: IncidentReplayIn) -> Any:
        """Record a replay of the incident's archived requests (`vigil replay`); the latest replay is
        the incident's `confirmation`."""
        row = await store.add_incident_replay(
            project_id,
            incident_id,
            target=body.target,
            reproduced=body.reproduced,
            attempted=body.attempted,
            failed=body.failed,
            results=[result.model_dump(mode="json") for result in body.results],
        )
        return _replay_out(row)

    @router.get(
        "/projects/{project_id}/incidents/{incident_id}/replays",
        response_model=list[IncidentReplayOut],
        tags=["incidents"],
    )
    async def list_incident_replays(
        project_id: str, incident_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 20
    ) -> Any:
        """The incident's replays, newest first."""
        await store.get_incident(project_id, incident_id)
        rows = await store.list_incident_replays(project_id, incident_id, limit=limit)
        return [_replay_out(row) for row in rows]

    @router.get("/projects/{project_id}/evidence/{fingerprint}", tags=["incidents"])
    async def get_evidence(
        project_id: str,
        fingerprint: Annotated[str, Path(pattern=f"^{SEGMENT}$", description="A signal's fingerprint.")],
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> list[dict[str, Any]]:
        """The archived evidence documents of one signal fingerprint, newest window first."""
        await store.get_project(project_id)
        if evidence is None:
            return []
        return await evidence.get(project_id, fingerprint, limit)

    @router.get("/projects/{project_id}/llm-usage", tags=["projects"])
    async def llm_usage(project_id: str) -> dict[str, Any]:
        """Tokens the LLM engine spent for the project today and per incident, and what is left."""
        await store.get_project(project_id)
        if budget is None:
            return {"configured": False}
        return {"configured": True, **await budget.usage(project_id)}

    return router
