"""The records a batch's POST carries are the records of its bus message, byte for byte."""

from __future__ import annotations

import orjson

from vigil.pipeline.agent_workers import records_json
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
