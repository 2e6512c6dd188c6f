"""Hit rates and CPU of the router's two caches on synthetic traffic.

- The view's attribute cache (`vigil.pipeline.view`): working sets of distinct attributes 0.5x
  to 3x one generation, drawn uniformly or Zipf-like, 8 attributes a record; the share of
  attributes found in the cache and µs per attribute.
- The template miner's shape cache (`vigil.pipeline.template_cache`): messages with a unique hex
  id or UUID each; µs per message and the shapes kept.

Usage::

    .venv/bin/python bench/router_caches.py
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from opentelemetry.proto.common.v1 import common_pb2

from vigil.pipeline import view
from vigil.pipeline.template_cache import ShapeCachedMiner

LOOKUPS = 400_000


def attribute_run(factor: float, zipf: bool) -> tuple[float, float]:
    """(hit rate, µs per attribute) of a working set `factor` times one generation."""
    size = view._CACHE_SIZE
    pool = []
    for i in range(int(size * factor)):
        kv = common_pb2.KeyValue(key=f"attr.k{i % 37}")
        kv.value.string_value = f"value-{i}"
        pool.append(kv.SerializeToString())
    rng = random.Random(1)
    weights = [1 / (i + 1) ** 0.8 for i in range(len(pool))] if zipf else None
    stream = rng.choices(pool, weights, k=LOOKUPS)
    records = [stream[i : i + 8] for i in range(0, len(stream), 8)]
    cache: Any = view._cache
    if isinstance(cache, dict):  # an older view: one dict
        cache.clear()
    else:
        view._cache = view._AttributeCache(size)
    for record in records[:5000]:  # warm
        view.record_attributes(record)
    decoded = 0
    decode = view._decode

    def counting(raw: bytes) -> Any:
        nonlocal decoded
        decoded += 1
        return decode(raw)

    view._decode = counting  # type: ignore[assignment]
    try:
        start = time.process_time()
        for record in records:
            view.record_attributes(record)
        spent = time.process_time() - start
    finally:
        view._decode = decode  # type: ignore[assignment]
    return 1 - decoded / len(stream), spent / len(stream) * 1e6


def hex_messages(count: int) -> list[str]:
    rng = random.Random(5)

    def an_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    kinds = [
        lambda: (
            f"request {an_id()} GET /api/orders/{rng.randrange(10**6)} returned 200 in {rng.randrange(300)} ms"
        ),
        lambda: f"trace {rng.getrandbits(128):032x} span {rng.getrandbits(64):016x} exported to collector",
        lambda: f"[instance: {an_id()}] session refreshed for client web-{rng.randrange(9)}",
        lambda: f"commit {rng.getrandbits(160):040x} deployed to cluster prod-{rng.randrange(3)} by ci",
        lambda: f"cache miss for key {rng.getrandbits(64):016x}, loading from shard {rng.randrange(16)}",
    ]
    return [rng.choice(kinds)() for _ in range(count)]


def main() -> None:
    print(f"attribute cache, generation of {view._CACHE_SIZE:,} entries:")
    for factor in (0.5, 1.1, 1.5, 2.0, 3.0):
        for zipf in (False, True):
            hit, us = attribute_run(factor, zipf)
            kind = "zipf" if zipf else "uniform"
            print(f"  working set {factor:>3}x ({kind:>7}): hit {hit:6.1%}, {us:.3f} µs/attribute")
    messages = hex_messages(40_000)
    best = float("inf")
    for _ in range(3):
        miner = ShapeCachedMiner()
        start = time.process_time()
        for message in messages:
            miner.mine(message)
        best = min(best, time.process_time() - start)
    shapes = len(getattr(miner, "_shapes", {}))
    print(f"template miner, messages with unique hex ids/UUIDs: {best / len(messages) * 1e6:.2f} µs/message")
    print(f"  ({shapes:,} shapes kept for {len(messages):,} messages)")


if __name__ == "__main__":
    main()
