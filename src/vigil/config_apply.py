"""Applies a declarative `vigil.yaml` to the store. Additive and idempotent: what the file names
is created or updated; what it does not name is left alone."""

from __future__ import annotations

import logging

from vigil.config_file import VigilFile
from vigil.store.repo import Store, hash_key, reveal

log = logging.getLogger(__name__)


async def apply_config(store: Store, declared: VigilFile) -> list[str]:
    """Returns the ids of the projects it touched."""
    touched: list[str] = []
    for project in declared.projects:
        row = await store.find_project(project.name) or await store.create_project(project.name)
        touched.append(row.id)
        known_hashes = {key.key_hash for key in await store.list_keys(row.id)}
        for key in project.api_keys:
            if hash_key(key.key.get_secret_value()) not in known_hashes:
                await store.create_key(row.id, key.name, key.key.get_secret_value())
        for name, pipeline in project.pipelines.items():
            await store.put_pipeline(row.id, name, pipeline)
        existing = [sink.spec for sink in await store.list_sinks(row.id)]
        for sink in project.sinks:
            if reveal(sink) not in existing:
                await store.add_sink(row.id, sink)
        log.info(
            "configuration applied",
            extra={"project": project.name, "pipelines": len(project.pipelines), "sinks": len(project.sinks)},
        )
    return touched
