"""The new-extreme rule in the service's per-endpoint baselines: false latency regressions on steady
endpoints, and regressions caught, by how many windows the rule waits (`detector_extreme_after`).

Synthetic endpoints, each window's p95 computed from its requests (lognormal durations around a
200 ms median, so the 200 ms latency floor never decides), for every combination of requests per
window (20, 60, 300) and request spread (sigma 0.15, 0.3, 0.5, 0.8), each plain, with a daily cycle
(median x exp(0.3 sin), starting at the night's low) and spiky (3 % of windows have a tenth of their
requests stalled 4x). Every endpoint runs `--windows` steady windows through the service's path
(`BaselineStore.assess`, `signals.detect`, `BaselineStore.learn`), counting latency regressions
(all false); at a few ages a copy of its state sees the next three windows with latency 1.6x, 1.8x
and 2.5x, counting the steps caught in their first window and within three. The same
p95 series go through every setting. Not tuned on NAB data: NAB is not used here.

Usage::

    .venv/bin/python bench/service_extreme.py [--windows 3000] [--after 20,240,1440] [--json]
"""

from __future__ import annotations

import argparse
import copy
import math
import random
import sys
import time
from typing import Any

from output import print_json

from vigil.detect.baselines import BaselineConfig, BaselineStore
from vigil.detect.signals import SignalKind, detect
from vigil.detect.stats import WindowStats

T0 = 1_700_006_400.0  # a midnight (UTC)
SIZE = 60.0
AGES = (30, 240, 1440, 2500)
STEPS = (1.6, 1.8, 2.5)
DAY_WINDOWS = 1440


def p95_series(rng: random.Random, n: int, requests: int, sigma: float, kind: str) -> list[float]:
    out = []
    k = max(0, math.ceil(0.95 * requests) - 1)
    for i in range(n):
        median = 200.0 * (
            math.exp(0.3 * math.sin(2 * math.pi * (i / DAY_WINDOWS - 0.25))) if kind == "daily" else 1.0
        )
        d = sorted(median * math.exp(rng.gauss(0, sigma)) for _ in range(requests))
        if kind == "spiky" and rng.random() < 0.03:
            d = sorted(x * 4.0 if j % 10 == 0 else x for j, x in enumerate(d))
        out.append(d[k])
    return out


def stats(i: int, p95: float, requests: int) -> WindowStats:
    return WindowStats(
        project="p",
        service="s",
        endpoint="GET /a",
        kind="server",
        window_start=T0 + SIZE * i,
        window_end=T0 + SIZE * (i + 1),
        count=requests,
        errors=0,
        p95_ms=p95,
    )


def step(store: BaselineStore, i: int, p95: float, requests: int) -> str:
    """'' (no latency regression), 'plain', 'assisted' (by a detector score) or 'extreme' (score 1)."""
    w = stats(i, p95, requests)
    signals = detect(w, store.assess(w))
    found = [s for s in signals if s.kind is SignalKind.LATENCY_REGRESSION]
    regressed = (
        ""
        if not found
        else "extreme"
        if "score 1.00" in found[0].title
        else "assisted"
        if "score" in found[0].title
        else "plain"
    )
    store.learn(
        w,
        {"p95_ms"}
        if any(s.kind in (SignalKind.LATENCY_REGRESSION, SignalKind.SLOW_ENDPOINT) for s in signals)
        else (),
    )
    return regressed


def run(config: BaselineConfig, endpoints: list[dict[str, Any]], windows: int) -> dict[str, Any]:
    false = 0
    false_by_age = {"<240": 0, "240-1440": 0, ">=1440": 0}
    false_by_kind = {"plain": 0, "daily": 0, "spiky": 0}
    false_by_why = {"plain": 0, "assisted": 0, "extreme": 0}
    by_endpoint: dict[str, int] = {}
    caught = {(f, a): [0, 0, 0] for f in STEPS for a in AGES}  # first window, within three, tried
    cpu = time.process_time()
    for e in endpoints:
        store = BaselineStore(config)
        for i, p95 in enumerate(e["steady"][:windows]):
            if i in AGES:
                for f in STEPS:
                    trial = copy.deepcopy(store)
                    hits = [step(trial, i + j, f * e["steady"][i + j], e["requests"]) for j in range(3)]
                    c = caught[f, i]
                    c[0] += bool(hits[0])
                    c[1] += any(hits)
                    c[2] += 1
            why = step(store, i, p95, e["requests"])
            if why and i >= config.min_windows:
                false_by_why[why] += 1
                if why != "plain":
                    by_endpoint[e["name"]] = by_endpoint.get(e["name"], 0) + 1
                false += 1
                false_by_age["<240" if i < 240 else "240-1440" if i < 1440 else ">=1440"] += 1
                false_by_kind[e["name"].split("/")[0]] += 1
    return {
        "false_regressions": false,
        "false_by_age": false_by_age,
        "false_by_kind": false_by_kind,
        "false_by_why": false_by_why,
        "assisted_false_by_endpoint": by_endpoint,
        "endpoint_windows": windows * len(endpoints),
        "caught": {f"{f}x at {a}": f"{c[0]} / {c[1]} of {c[2]}" for (f, a), c in caught.items()},
        "cpu_s": round(time.process_time() - cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=3000)
    parser.add_argument("--after", default="20,60,240,1440")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    endpoints = []
    for kind in ("plain", "daily", "spiky"):
        for requests in (20, 60, 300):
            for sigma in (0.15, 0.3, 0.5, 0.8):
                steady = p95_series(rng, args.windows + 3, requests, sigma, kind)
                endpoints.append(
                    {"requests": requests, "steady": steady, "name": f"{kind}/{requests}/{sigma}"}
                )
    results: dict[str, Any] = {
        "off": run(BaselineConfig(detector_extreme_tolerance=0.0), endpoints, args.windows)
    }
    print("off", results["off"], file=sys.stderr, flush=True)
    for after in (int(x) for x in args.after.split(",")):
        key = f"after {after}"
        results[key] = run(BaselineConfig(detector_extreme_after=after), endpoints, args.windows)
        print(key, results[key], file=sys.stderr, flush=True)
    if args.json:
        print_json(results, indent=2)


if __name__ == "__main__":
    main()
