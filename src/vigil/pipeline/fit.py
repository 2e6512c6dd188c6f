"""Batches that the bus (or the pipeline's byte cap) will not take whole are handled on their own:
split into batches that fit, and a record too large alone cut down with a visible marker. Nothing
is dropped silently, and nothing waits for a retry that can never succeed.

Splitting is a function of the batch's content, so a batch rebuilt after a redelivery splits the
same way, and its parts keep their request ids (derived from the records' origins).
"""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import Counter

from vigil.pipeline.batcher import Batch
from vigil.records import FlatRecord

TRUNCATED_ATTRIBUTE = "vigil.truncated_bytes"
"""Added to a record cut to fit: the size of its JSON encoding before it was cut."""
CUT_MARKER = "…[truncated by Vigil]"
ENVELOPE_BYTES = 512
"""A batch's JSON without its records (request id, project, pipeline, counts), with room to spare."""
_MIN_RECORD_BYTES = 1024
_TEMPLATE_KEPT = 512

BATCHES_SPLIT = Counter("vigil_batches_split_total", "Batches split because they exceeded the byte cap.")
RECORDS_TRUNCATED = Counter(
    "vigil_records_truncated_total", "Records cut down because alone they exceeded the byte cap."
)


def split_batch(batch: Batch, max_bytes: int) -> list[Batch]:
    """Batches of the same records, in order, each encoding to at most `max_bytes`."""
    budget = max(max_bytes - ENVELOPE_BYTES, _MIN_RECORD_BYTES)
    parts: list[Batch] = []
    current = Batch(batch.project_id, batch.pipeline)
    size = 0
    for record, origin in zip(batch.records, batch.origins, strict=True):
        encoded = len(orjson.dumps(record))
        if encoded > budget:
            record = truncate_record(record, budget)
            encoded = len(orjson.dumps(record))
        if current.records and size + encoded + 1 > budget:
            parts.append(current)
            current = Batch(batch.project_id, batch.pipeline)
            size = 0
        current.records.append(record)
        current.origins.append(origin)
        size += encoded + 1
    if current.records:
        parts.append(current)
    if len(parts) > 1:
        BATCHES_SPLIT.inc()
    return parts


def truncate_record(record: FlatRecord, max_bytes: int) -> FlatRecord:
    """The record with its largest values cut until its JSON fits in `max_bytes`, marked with
    `vigil.truncated_bytes` (its size before) so that an agent can tell it is not whole."""
    original = len(orjson.dumps(record))
    if original <= max_bytes:
        return record
    RECORDS_TRUNCATED.inc()
    out: FlatRecord = {
        k: dict(v) if k in ("attributes", "resourceAttributes") and isinstance(v, dict) else v
        for k, v in record.items()
    }
    attributes = out.get("attributes")
    if not isinstance(attributes, dict):
        attributes = out["attributes"] = {}
    attributes[TRUNCATED_ATTRIBUTE] = original
    budget = max(max_bytes, _MIN_RECORD_BYTES)
    template = out.get("template")
    if isinstance(template, str) and len(template) > _TEMPLATE_KEPT:
        # derived from the body: the record's own data is cut last
        out["template"] = template[:_TEMPLATE_KEPT] + CUT_MARKER
    for _ in range(64):
        excess = len(orjson.dumps(out)) - budget
        if excess <= 0:
            return out
        holder, key, size = _largest_value(out)
        value = holder[key]
        if isinstance(value, str) and size - excess > 256:
            # keep the share of characters that the bytes kept allow (escapes make some longer)
            keep = len(value) * (size - excess - 128) // size
            holder[key] = value[:keep] + CUT_MARKER
        else:
            holder[key] = f"[{size} bytes dropped by Vigil]"
    raise ValueError(f"a record cannot be cut to {max_bytes} bytes")


def _largest_value(record: FlatRecord) -> tuple[dict[str, Any], str, int]:
    """The field (body, template, ...) or attribute value whose encoding is the largest."""
    best: tuple[dict[str, Any], str, int] = (record, "body", -1)
    for holder in (record, record.get("attributes"), record.get("resourceAttributes")):
        if not isinstance(holder, dict):
            continue
        for key, value in holder.items():
            if key == TRUNCATED_ATTRIBUTE or (isinstance(value, dict) and holder is record):
                continue
            size = len(orjson.dumps(value))
            if size > best[2]:
                best = (holder, key, size)
    return best
