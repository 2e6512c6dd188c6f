"""CPU per record of each step the router takes for a matching record, measured alone.

The load generator's 1,000-record exports (bench/loadgen.py) go through the steps one after the
other, each step timed over all records with the process's CPU clock, in one process and without
the bus: parse (protobuf, the router's view of the export: `vigil.pipeline.view`), filter (an empty filter on the protobuf objects, compared by severity as the router does), flatten, redact
(built-in rules, the default), template (the project's miner, with the router's cache by message
shape), batch (100 records, request id from the records' origins) and encode (JSON of the batch,
as published on the batches stream). `--repeat` rounds go over `--messages` exports; the best
round counts (the machine is shared).

Usage::

    .venv/bin/python bench/router_steps.py [--messages 40] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loadgen import BodySource
from output import print_json

from vigil.pipeline.batcher import Batch, Ticket
from vigil.pipeline.filters import RecordFilter, ResourceContext
from vigil.pipeline.redact import RedactionSpec, Redactor
from vigil.pipeline.template_cache import ShapeCachedMiner
from vigil.pipeline.view import ViewExport, flatten_view, record_attributes
from vigil.records import effective_severity
from vigil.specs import FilterSpec

STEPS = ("parse", "filter", "flatten", "redact", "template", "batch", "encode")


def one_round(bodies: list[bytes]) -> tuple[dict[str, float], int]:
    spent = dict.fromkeys(STEPS, 0.0)
    clock = time.process_time
    record_filter = RecordFilter(FilterSpec())
    redactor = Redactor(RedactionSpec())
    shapes = ShapeCachedMiner()
    total = 0
    for number, body in enumerate(bodies):
        t = clock()
        request = ViewExport.FromString(body)
        spent["parse"] += clock() - t

        t = clock()
        taken = []
        for rl in request.resource_logs:
            resource_attributes = record_attributes(rl.resource.attributes)
            context = ResourceContext(resource_attributes, str(resource_attributes.get("service.name", "")))
            if not record_filter.accepts_resource(context):
                continue
            # as the router: a filter whose only condition on a record is a severity is a comparison
            min_severity = record_filter.only_min_severity
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    severity = record.severity_number or effective_severity(record)
                    if min_severity is not None:
                        if severity < min_severity:
                            continue
                    elif not record_filter.accepts_record(record, severity):
                        continue
                    taken.append((record, resource_attributes))
        spent["filter"] += clock() - t
        total += len(taken)

        t = clock()
        flat = [flatten_view(record, resource, 0) for record, resource in taken]
        spent["flatten"] += clock() - t

        t = clock()
        items = [redactor.redact_record(f) for f in flat]
        spent["redact"] += clock() - t

        t = clock()
        for item in items:
            match = shapes.mine(item["body"])
            item["template_id"], item["template"] = match.template_id, match.template
        spent["template"] += clock() - t

        t = clock()
        ticket = Ticket(None, number)
        batches = []
        for start in range(0, len(items), 100):
            batch = Batch("p", "all")
            for index, item in enumerate(items[start : start + 100], start):
                batch.records.append(item)
                batch.origins.append((ticket, index))
            batches.append(batch.payload())
        spent["batch"] += clock() - t

        t = clock()
        for payload in batches:
            orjson.dumps(payload)
        spent["encode"] += clock() - t
    return spent, total


def measure(messages: int, repeat: int) -> dict[str, Any]:
    source = BodySource(8, prefix=7)
    bodies = [source.next()[0] for _ in range(messages)]
    best: dict[str, float] | None = None
    records = 0
    for _ in range(repeat):
        spent, records = one_round(bodies)
        if best is None or sum(spent.values()) < sum(best.values()):
            best = spent
    assert best is not None
    per_record = {step: best[step] / records * 1e6 for step in STEPS}
    return {
        "records": records,
        "us_per_record": per_record,
        "total_us_per_record": sum(per_record.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = measure(args.messages, args.repeat)
    if args.json:
        print_json(out)
        return
    for step, us in out["us_per_record"].items():
        print(f"{step:>9}: {us:6.2f} µs/record")
    print(f"{'total':>9}: {out['total_us_per_record']:6.2f} µs/record ({out['records']:,} records)")


if __name__ == "__main__":
    main()
