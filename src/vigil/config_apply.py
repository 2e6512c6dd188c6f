"""Applies a declarative `vigil.yaml` to the store. Additive and idempotent: what the file names
is created or updated; what it does not name is left alone."""

from __future__ import annotations

import logging

from vigil.config_file import VigilFile
from vigil.outbound_policy import OutboundPolicy, OutboundRefused
from vigil.specs import WebhookSinkSpec
from vigil.store.repo import Store, hash_key, reveal

log = logging.getLogger(__name__)


async def apply_config(
    store: Store, declared: VigilFile, outbound: OutboundPolicy | None = None
) -> list[str]:
    """Returns the ids of the projects it touched. Raises OutboundRefused, before touching
    anything, when an agent or sink URL is one the outbound policy refuses."""
    if outbound is not None:
        check_outbound(declared, outbound)
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


def check_outbound(declared: VigilFile, outbound: OutboundPolicy) -> None:
    for project in declared.projects:
        urls = [
            (f"pipeline {name!r}: agent.endpoint", pipeline.agent.endpoint)
            for name, pipeline in project.pipelines.items()
            if not pipeline.agent.endpoint.startswith("builtin:")
        ]
        for index, sink in enumerate(project.sinks):
            if isinstance(sink, WebhookSinkSpec):
                urls.append((f"sinks[{index}].url", str(sink.url)))
            else:
                urls.append((f"sinks[{index}].webhook_url", sink.webhook_url.get_secret_value()))
        for where, url in urls:
            try:
                outbound.check_url(url)
            except OutboundRefused as exc:
                raise OutboundRefused(f"project {project.name!r}, {where}: {exc}") from None
