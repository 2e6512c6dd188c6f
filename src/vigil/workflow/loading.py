"""Runbooks from the runbooks folder, loaded into the database when the API starts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from vigil.store.repo import Store
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow.runbooks import Runbook, load_folder

log = logging.getLogger(__name__)


def _read(folder: Path) -> dict[str, list[Runbook]]:
    if not folder.is_dir():
        raise RuntimeError(f"VIGIL_RUNBOOKS_DIR: {folder} is not a directory")
    return load_folder(folder)


async def load_runbooks(store: Store, folder: Path) -> int:
    """Load every runbook of `folder`; a project folder that names no project is an error, as is
    a runbook that does not validate (the start stops with the file and the field)."""
    found = await asyncio.to_thread(_read, folder)
    repo = WorkflowRepo(store)
    loaded = 0
    for project_ref, runbooks in found.items():
        project = await store.find_project(project_ref)
        project_id = project.id if project is not None else project_ref
        await store.get_project(project_id)  # NotFound names the folder's project
        for runbook in runbooks:
            _, created = await repo.put_runbook(project_id, runbook, origin="file")
            await repo.audit(
                project_id,
                "runbooks folder",
                "config.runbook",
                runbook.id,
                {"change": "loaded", "created": created},
            )
            loaded += 1
    log.info("runbooks loaded", extra={"folder": str(folder), "runbooks": loaded})
    return loaded
