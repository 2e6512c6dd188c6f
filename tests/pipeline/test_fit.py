"""Batches over their byte cap are split in order, and a record too large alone is cut and marked."""

from __future__ import annotations

import orjson

from vigil.pipeline.batcher import Batch, Ticket
from vigil.pipeline.fit import CUT_MARKER, TRUNCATED_ATTRIBUTE, split_batch, truncate_record


def batch_of(bodies: list[str]) -> Batch:
    batch = Batch("proj", "errors")
    ticket = Ticket(None, 7)
    for index, body in enumerate(bodies):
        batch.records.append({"body": body, "attributes": {"k": "v"}, "template_id": "t1", "template": body})
        batch.origins.append((ticket, index))
    return batch


def test_a_batch_that_fits_stays_whole() -> None:
    batch = batch_of(["x" * 100] * 5)
    [part] = split_batch(batch, 64 * 1024)
    assert part.records == batch.records and part.request_id() == batch.request_id()


def test_parts_keep_order_fit_the_cap_and_get_stable_ids() -> None:
    batch = batch_of([f"{i}" * 3000 for i in range(10)])
    parts = split_batch(batch, 8 * 1024)
    assert len(parts) > 1
    assert [r for p in parts for r in p.records] == batch.records
    assert [o for p in parts for o in p.origins] == batch.origins
    assert all(len(orjson.dumps(p.payload())) <= 8 * 1024 for p in parts)
    again = split_batch(batch_of([f"{i}" * 3000 for i in range(10)]), 8 * 1024)
    assert [p.request_id() for p in parts] == [p.request_id() for p in again]
    assert len({p.request_id() for p in parts}) == len(parts)


def test_a_record_too_large_alone_is_cut_with_a_marker() -> None:
    record = {"body": "\x01" * 50_000, "attributes": {"small": 1}, "template": "\x01" * 50_000}
    cut = truncate_record(record, 20_000)
    assert len(orjson.dumps(cut)) <= 20_000
    assert cut["body"].endswith(CUT_MARKER) and len(cut["body"]) > 1_000
    assert cut["attributes"] == {"small": 1, TRUNCATED_ATTRIBUTE: len(orjson.dumps(record))}
    assert record["attributes"] == {"small": 1}  # the original is left as it was


def test_a_huge_structured_attribute_is_dropped_with_its_size() -> None:
    record = {"body": "short", "attributes": {"blob": {str(i): "y" * 100 for i in range(500)}}}
    cut = truncate_record(record, 4096)
    assert len(orjson.dumps(cut)) <= 4096
    assert cut["body"] == "short"
    assert cut["attributes"]["blob"].endswith("bytes dropped by Vigil]")
