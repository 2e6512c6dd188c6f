"""The batch ledger writes rows and statuses in grouped transactions, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from vigil.pipeline.ledger import BatchLedger
from vigil.store.db import RawJson
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


async def test_records_recorded_as_their_json_read_back_as_records(store: Store) -> None:
    project = await store.create_project("ledger")
    ledger = BatchLedger(store)
    await ledger.start()
    raw = RawJson(b'[{"body":"a \\"quoted\\" word"},{"body":"b","count":3}]')
    await ledger.record("batch-raw", project.id, "all", raw, 4, record_count=2)
    await ledger.shutdown()
    row = await store.get_batch("batch-raw")
    assert row is not None and (row.record_count, row.represented) == (2, 4)
    assert row.records == [{"body": 'a "quoted" word'}, {"body": "b", "count": 3}]
