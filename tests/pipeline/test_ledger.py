"""The batch ledger writes rows and statuses in grouped transactions, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import orjson

from vigil.pipeline.ledger import BatchLedger
from vigil.store.encoded import EncodedList
from vigil.store.repo import Store


async def test_rows_exist_once_recorded_and_statuses_follow(store: Store) -> None:
    project = await store.create_project("ledger")
    ledger = BatchLedger(store, interval_s=0.01)
    await ledger.start()
    await asyncio.gather(
        *(ledger.record(f"batch-{i}", project.id, "all", [{"body": f"r{i}"}], 1) for i in range(20))
    )
    for i in range(20):  # recorded means written: an agent's output may name it at once
        row = await store.get_batch(f"batch-{i}")
        assert row is not None and row.status == "pending" and row.records == [{"body": f"r{i}"}]
    ledger.status("batch-1", "retrying", 1, "HTTP 503")
    ledger.status("batch-1", "delivered", 2)
    ledger.status("batch-2", "dead", 3, "HTTP 400: bad batch")
    await ledger.shutdown()
    one, two = await store.get_batch("batch-1"), await store.get_batch("batch-2")
    assert one is not None and (one.status, one.attempts, one.last_error) == ("delivered", 2, None)
    assert two is not None and (two.status, two.attempts, two.last_error) == (
        "dead",
        3,
        "HTTP 400: bad batch",
    )


async def test_a_batch_recorded_again_keeps_its_row(store: Store) -> None:
    project = await store.create_project("ledger")
    first = BatchLedger(store)
    await first.start()
    await first.record("batch-x", project.id, "all", [{"body": "a"}, {"body": "b"}], 2)
    first.status("batch-x", "retrying", 1, "timeout")
    await first.shutdown()
    # another process (or a restart) records the redelivered batch: no error, the row stays
    second = BatchLedger(store)
    await second.start()
    # and learns the attempts made before (the bus may have lost its count in a crash)
    assert await second.record("batch-x", project.id, "all", [{"body": "changed"}], 1) == 1
    assert await second.record("batch-new", project.id, "all", [{"body": "new"}], 1) == 0
    await second.shutdown()
    row = await store.get_batch("batch-x")
    assert row is not None
    assert (row.record_count, row.status, row.attempts) == (2, "retrying", 1)


async def test_one_group_of_recorded_and_new_batches(store: Store) -> None:
    project = await store.create_project("ledger")
    first = BatchLedger(store)
    await first.start()
    await first.record("batch-old", project.id, "all", [{"body": "a"}], 1)
    first.status("batch-old", "retrying", 3, "HTTP 503")
    await first.shutdown()
    second = BatchLedger(store)
    await second.start()
    # one flush holds both: the recorded one reports its attempts, the new one none
    old, new = await asyncio.gather(
        second.record("batch-old", project.id, "all", [{"body": "a"}], 1),
        second.record("batch-new", project.id, "all", [{"body": "b"}], 1),
    )
    await second.shutdown()
    assert (old, new) == (3, 0)
    row = await store.get_batch("batch-new")
    assert row is not None and (row.status, row.records, row.represented) == ("pending", [{"body": "b"}], 1)
    assert row.created_at == row.updated_at


async def test_records_encoded_in_the_message_are_stored_as_they_are(store: Store) -> None:
    """A batch's records arrive as the JSON of its bus message: stored from there, the row holds
    the same records as when they are given decoded."""
    project = await store.create_project("ledger")
    ledger = BatchLedger(store, interval_s=0.01)
    await ledger.start()
    records = [{"body": "a", "n": 1, "x": 1.5, "tags": ["t"]}, {"body": 'quote " and \u00e9'}]
    encoded = EncodedList(orjson.dumps(records).decode(), len(records))
    assert await ledger.record("batch-encoded", project.id, "all", encoded, 3) == 0
    await ledger.record("batch-decoded", project.id, "all", records, 3)
    await ledger.shutdown()
    stored = await store.get_batch("batch-encoded")
    assert stored is not None and (stored.records, stored.record_count, stored.represented) == (records, 2, 3)
    decoded = await store.get_batch("batch-decoded")
    assert decoded is not None and decoded.records == stored.records
