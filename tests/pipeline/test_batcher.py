"""Batcher: records grouped into batches by count and by age, with their bus tickets."""

from __future__ import annotations

import asyncio

from vigil.pipeline.batcher import Batch, Batcher, Ticket


def make_batcher(max_records: int = 3, max_wait_ms: int = 60_000) -> tuple[Batcher, list[Batch]]:
    emitted: list[Batch] = []
    return Batcher("proj-1", "errors", max_records, max_wait_ms, emitted.append), emitted


def bodies(batch: Batch) -> list[str]:
    return [r["body"] for r in batch.records]


async def test_batch_is_emitted_at_max_records() -> None:
    batcher, emitted = make_batcher(max_records=3)
    ticket = Ticket(None, sequence=7)
    for i in range(2):
        batcher.add({"body": f"r{i}"}, ticket, i)
    assert emitted == []
    assert batcher.buffered == 2
    batcher.add({"body": "r2"}, ticket, 2)
    assert [bodies(b) for b in emitted] == [["r0", "r1", "r2"]]
    assert (emitted[0].project_id, emitted[0].pipeline) == ("proj-1", "errors")
    assert batcher.buffered == 0


async def test_records_keep_their_order_across_batches() -> None:
    batcher, emitted = make_batcher(max_records=4)
    ticket = Ticket(None, sequence=1)
    for i in range(10):
        batcher.add({"body": f"r{i}"}, ticket, i)
    batcher.flush()
    assert [bodies(b) for b in emitted] == [
        ["r0", "r1", "r2", "r3"],
        ["r4", "r5", "r6", "r7"],
        ["r8", "r9"],
    ]
    assert [index for _, index in emitted[1].origins] == [4, 5, 6, 7]


async def test_partial_batch_is_emitted_after_max_wait() -> None:
    loop = asyncio.get_running_loop()
    emitted: list[tuple[float, Batch]] = []
    done = asyncio.Event()

    def emit(batch: Batch) -> None:
        emitted.append((loop.time(), batch))
        done.set()

    batcher = Batcher("proj-1", "errors", 10, 300, emit)
    started = loop.time()
    batcher.add({"body": "only"}, Ticket(None, sequence=1), 0)
    await asyncio.sleep(0.15)
    assert emitted == []
    await asyncio.wait_for(done.wait(), timeout=5)
    [(emitted_at, batch)] = emitted
    assert bodies(batch) == ["only"]
    assert 0.25 <= emitted_at - started < 2
    assert batcher.buffered == 0


async def test_timer_of_a_full_batch_does_not_fire_again() -> None:
    batcher, emitted = make_batcher(max_records=2, max_wait_ms=100)
    ticket = Ticket(None, sequence=1)
    batcher.add({"body": "a"}, ticket, 0)
    batcher.add({"body": "b"}, ticket, 1)
    batcher.add({"body": "c"}, ticket, 2)
    await asyncio.sleep(0.3)
    assert [bodies(b) for b in emitted] == [["a", "b"], ["c"]]


async def test_flush_emits_the_open_batch_only_once() -> None:
    batcher, emitted = make_batcher(max_records=5)
    batcher.flush()
    assert emitted == []
    batcher.add({"body": "x"}, Ticket(None, sequence=1), 0)
    batcher.flush()
    batcher.flush()
    assert [bodies(b) for b in emitted] == [["x"]]


async def test_tickets_count_pending_records() -> None:
    batcher, emitted = make_batcher(max_records=10)
    first, second = Ticket(None, sequence=1), Ticket(None, sequence=2)
    batcher.add({"body": "a"}, first, 0)
    batcher.add({"body": "b"}, second, 0)
    batcher.add({"body": "c"}, first, 1)
    assert (first.pending, second.pending) == (2, 1)
    batcher.flush()
    assert emitted[0].origins == [(first, 0), (second, 0), (first, 1)]


def build(origins: list[tuple[int, int]], project: str = "proj-1", pipeline: str = "errors") -> Batch:
    batch = Batch(project, pipeline)
    for sequence, index in origins:
        batch.origins.append((Ticket(None, sequence), index))
    return batch


def test_request_id_is_deterministic_for_the_same_origins() -> None:
    first = build([(1, 0), (1, 1), (2, 0)])
    again = build([(1, 0), (1, 1), (2, 0)])
    assert first.request_id() == again.request_id()
    assert len(first.request_id()) == 32
    int(first.request_id(), 16)


def test_request_id_differs_for_different_origins() -> None:
    ids = {
        build([(1, 0), (1, 1)]).request_id(),
        build([(1, 1), (1, 0)]).request_id(),
        build([(1, 0), (1, 2)]).request_id(),
        build([(1, 0), (2, 1)]).request_id(),
        build([(1, 0)]).request_id(),
        build([(11, 0)]).request_id(),
        build([(1, 10)]).request_id(),
        build([(1, 0), (1, 1)], pipeline="other").request_id(),
        build([(1, 0), (1, 1)], project="proj-2").request_id(),
    }
    assert len(ids) == 9


def test_payload_carries_the_request_id_and_records() -> None:
    batch = build([(3, 0)])
    batch.records.append({"body": "x"})
    batch.records.append({"body": "y", "count": 41})
    assert batch.payload() == {
        "request_id": batch.request_id(),
        "project_id": "proj-1",
        "pipeline": "errors",
        "represented": 42,
        "record_count": 2,
        "records": [{"body": "x"}, {"body": "y", "count": 41}],
    }


def test_batches_of_two_streams_with_equal_sequences_get_different_ids() -> None:
    """Records partitions (and the incidents stream) number their messages independently: equal
    (sequence, index) origins on two streams are different records, and the bus's duplicate window
    would drop the second batch if the ids were equal."""
    ids = set()
    for stream in ("VIGIL_RECORDS", "VIGIL_RECORDS_1", "VIGIL_RECORDS_2", "VIGIL_INCIDENTS"):
        batch = Batch("proj-1", "errors")
        batch.origins += [(Ticket(None, 5, stream), 0), (Ticket(None, 5, stream), 1)]
        ids.add(batch.request_id())
    assert len(ids) == 4


def test_request_ids_of_the_first_records_stream_are_unchanged() -> None:
    """VIGIL_RECORDS's batches keep the ids they had before partitions (redeliveries across an
    upgrade are still recognised)."""
    assert build([(1, 0), (2, 3)]).request_id() == "95aa1506b4ec6803ddb8fc78348b451a"


def test_request_ids_of_mixed_origins_are_unchanged() -> None:
    """Runs of one message, roll-ups (no message) and other streams, interleaved: the id is the one
    batches had before ids were built run by run (redeliveries across an upgrade are recognised)."""
    a, b, c = Ticket(None, 7), Ticket(None, 7, "VIGIL_RECORDS_1"), Ticket(None, 9)
    batch = Batch("proj-1", "errors")
    batch.origins += [(a, 0), (a, 1), (None, "x:3:4"), (b, 0), (b, 1), (a, 2), (c, 0), (None, "y:1:2"), (b, "incident")]
    assert batch.request_id() == "382453c7f1c88d014b16db5c56aec3d4"


def test_represented_counts_rolled_up_items_and_plain_records() -> None:
    batch = build([(1, 0), (1, 1), (1, 2)])
    batch.records += [{"body": "a"}, {"body": "b", "count": 5}, {"body": "c", "count": "3"}]
    assert batch.represented == 9
    assert Batch("proj-1", "errors").represented == 0


def test_request_id_is_pinned_for_runs_of_messages_roll_ups_and_other_streams() -> None:
    # a batch rebuilt after an upgrade must get the id it had before (the bus deduplicates by it)
    a, b, c = Ticket(None, 7), Ticket(None, 8, "VIGIL_RECORDS_2"), Ticket(None, 7, "VIGIL_INCIDENTS")
    batch = Batch("proj-1", "errors")
    batch.origins += [(a, 0), (a, 1), (a, 2), (b, 0), (b, 5), (None, "t1:3:99"), (None, "t2:1:5"), (c, "incident")]
    batch.origins.append((a, 3))
    assert batch.request_id() == "b95a6675371dbc7049b15342a61619cc"
