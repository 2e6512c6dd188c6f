"""Dead letters: work that could not be delivered, listed and put back on the bus."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from vigil.api.replay import Replayer
from vigil.api.schemas import DeadLetterOut, ReplayOut
from vigil.store.repo import Store


def dead_letters_router(store: Store, replayer: Replayer) -> APIRouter:
    router = APIRouter(tags=["dead letters"])

    @router.get("/projects/{project_id}/dead-letters", response_model=list[DeadLetterOut])
    async def list_dead_letters(
        project_id: str,
        kind: Annotated[str | None, Query(pattern="^(batch|sink)$")] = None,
        include_replayed: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Any:
        await store.get_project(project_id)
        return await store.list_dead_letters(
            project_id, kind=kind, include_replayed=include_replayed, limit=limit
        )

    @router.post("/projects/{project_id}/dead-letters/{dead_letter_id}/replay", response_model=ReplayOut)
    async def replay_one(project_id: str, dead_letter_id: str) -> Any:
        row = await store.get_dead_letter(project_id, dead_letter_id)
        await replayer.replay(row)
        return ReplayOut(replayed=[row.id])

    @router.post("/projects/{project_id}/dead-letters/replay", response_model=ReplayOut)
    async def replay_all(
        project_id: str, kind: Annotated[str | None, Query(pattern="^(batch|sink)$")] = None
    ) -> Any:
        await store.get_project(project_id)
        rows = await store.list_dead_letters(project_id, kind=kind, include_replayed=False, limit=1000)
        for row in rows:
            await replayer.replay(row)
        return ReplayOut(replayed=[row.id for row in rows])

    return router
