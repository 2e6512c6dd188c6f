"""Stored citations expire: the hourly sweep deletes those past the retention and keeps the rest,
on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vigil.investigate.citations import Citation, CitationStore
from vigil.investigate.retention import CitationRetention
from vigil.store.repo import Store

DAY = 86_400.0


async def test_the_sweep_deletes_only_citations_past_the_retention(store: Store) -> None:
    project = (await store.create_project("payments")).id
    citations = CitationStore(store)
    old = Citation.of("record", project, "old", "a record")
    new = Citation.of("query", project, "new", "a query")
    await citations.put_many([(old, {"record": {"body": "pool exhausted"}}), (new, {"rows": []})])
    # saved again (the same content): still one row each
    await citations.put(new, {"rows": []})

    retention = CitationRetention(store, retention_s=30 * DAY)
    assert await retention.sweep(now=datetime.now(UTC) + timedelta(days=1)) == 0
    assert await retention.sweep(now=datetime.now(UTC) + timedelta(days=31)) == 2
    assert await citations.get_many(project, [old.id, new.id]) == {}

    await citations.put_many([(old, {"record": {"body": "pool exhausted"}}), (new, {"rows": []})])
    assert await retention.sweep() == 0
    found = await citations.get_many(project, [old.id, new.id])
    assert set(found) == {old.id, new.id}
    assert found[old.id]["record"] == {"body": "pool exhausted"}
