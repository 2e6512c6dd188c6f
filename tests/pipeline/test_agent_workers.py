"""The records a batch's POST carries (and the ledger stores) are the records of its bus message,
byte for byte, cut from it without decoding them where the router wrote it so."""

from __future__ import annotations

import orjson

from vigil.pipeline.agent_workers import records_json, split_records
from vigil.pipeline.batcher import Batch, Ticket


def test_records_are_cut_from_the_message_as_the_router_encodes_them() -> None:
    batch = Batch("project", "all")
    for i in range(5):
        # a body and an attribute that look like the key being searched for
        batch.records.append({"body": f'x ,"records": {i} "q"', "attributes": {"records": [i, {"a": "}"}]}})
        batch.origins.append((Ticket(None, 1), i))
    data = orjson.dumps(batch.payload())
    decoded = orjson.loads(data)
    body = records_json(data, decoded)
    assert body == orjson.dumps(decoded["records"])
    assert orjson.loads(body) == batch.records


def test_other_layouts_are_encoded_again() -> None:
    nested_first = orjson.dumps({"request_id": "r", "meta": {"records": [9]}, "records": [{"body": "a"}]})
    records_first = orjson.dumps({"records": [{"body": "a"}], "request_id": "r"})
    for data in (nested_first, records_first):
        assert records_json(data, orjson.loads(data)) == b'[{"body":"a"}]'


def test_the_routers_batches_are_split_without_decoding_the_records() -> None:
    batch = Batch("project", "all")
    for i in range(5):
        # bodies and attributes that look like the key being searched for, and like the end
        batch.records.append({"body": f'x ,"records": [{i}]}} "q"', "attributes": {"records": [i, {"a": "]}"}]}})
        batch.origins.append((Ticket(None, 1), i))
    data = orjson.dumps(batch.payload())
    split = split_records(data)
    assert split is not None
    others, body = split
    assert others == {
        "request_id": batch.request_id(),
        "project_id": "project",
        "pipeline": "all",
        "represented": 5,
        "record_count": 5,
    }
    assert body == records_json(data, orjson.loads(data))
    assert orjson.loads(body) == batch.records


def test_messages_of_other_layouts_are_not_split() -> None:
    before_record_counts = orjson.dumps({"request_id": "r", "represented": 1, "records": [{"body": "a"}]})
    records_not_last = orjson.dumps({"request_id": "r", "record_count": 1, "records": [{"body": "a"}], "x": 1})
    nested_first = orjson.dumps({"request_id": "r", "record_count": 1, "meta": {"records": [9]}, "records": []})
    for data in (before_record_counts, records_not_last, nested_first, b"not json", b""):
        assert split_records(data) is None
