"""The records a batch's POST carries are the records of its bus message, byte for byte."""

from __future__ import annotations

import orjson

from vigil.pipeline.agent_workers import open_batch, records_json
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


def test_a_batch_is_opened_without_decoding_its_records() -> None:
    batch = Batch("project", "all")
    for i in range(3):
        batch.records.append({"body": f'x ,"records": {i} "q"', "count": 2, "attributes": {"records": [i]}})
        batch.origins.append((Ticket(None, 1), i))
    data = orjson.dumps(batch.payload())
    envelope, body = open_batch(data)
    assert envelope == {
        "request_id": batch.request_id(),
        "project_id": "project",
        "pipeline": "all",
        "represented": 6,
        "record_count": 3,
    }
    assert body == orjson.dumps(batch.records)


def test_a_message_of_an_older_router_is_decoded_whole() -> None:
    """Without `record_count` (routers before it), or with the records first, the same answer."""
    records = [{"body": "a"}, {"body": "b"}]
    older = orjson.dumps({"request_id": "r", "represented": 2, "records": records})
    records_first = orjson.dumps({"records": records, "request_id": "r", "record_count": 2})
    for data in (older, records_first):
        envelope, body = open_batch(data)
        assert (envelope["request_id"], envelope["record_count"], orjson.loads(body)) == ("r", 2, records)
        assert "records" not in envelope
