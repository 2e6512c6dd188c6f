"""CPU per endpoint window of the service's baseline path, and the baselines' saved state.

1,000 endpoints x 60 one-minute windows (p95 around 120 ms, 20 % log-normal noise) through
`BaselineStore.assess`, `signals.detect` and `BaselineStore.learn` (best of 3 runs, process CPU
time), then `BaselineStore.state()` encoded with orjson as the detector saves it (best of 5).
To compare two trees, run it with each one's sources first on the path, one after the other:

    PYTHONPATH=/path/to/other/tree/src .venv/bin/python bench/baseline_cpu.py
    .venv/bin/python bench/baseline_cpu.py
"""

from __future__ import annotations

import math
import random
import time

import orjson
from output import print_json

import vigil
from vigil.detect.baselines import BaselineStore
from vigil.detect.signals import detect
from vigil.detect.stats import WindowStats

ENDPOINTS, WINDOWS = 1000, 60
T0 = 1_700_006_400.0


def main() -> None:
    rng = random.Random(1)
    stats = [
        [
            WindowStats(
                project="p",
                service="s",
                endpoint=f"GET /{e}",
                kind="server",
                window_start=T0 + 60 * i,
                window_end=T0 + 60 * i + 60,
                count=20,
                errors=0,
                p95_ms=120 * math.exp(rng.gauss(0, 0.2)),
            )
            for e in range(ENDPOINTS)
        ]
        for i in range(WINDOWS)
    ]
    cpu = math.inf
    store = BaselineStore()
    for _ in range(3):
        store = BaselineStore()
        t = time.process_time()
        for batch in stats:
            for w in batch:
                detect(w, store.assess(w))
                store.learn(w)
        cpu = min(cpu, time.process_time() - t)
    save = math.inf
    for _ in range(5):
        t = time.process_time()
        state = orjson.dumps(store.state())
        save = min(save, time.process_time() - t)
    result = {
        "tree": vigil.__file__.rsplit("/src/", 1)[0],
        "us_per_endpoint_window": round(cpu / (ENDPOINTS * WINDOWS) * 1e6, 2),
        "state_bytes_per_endpoint": round(len(state) / ENDPOINTS),
        "save_ms_per_1000_endpoints": round(save * 1e3, 1),
    }
    print_json(result)


if __name__ == "__main__":
    main()
