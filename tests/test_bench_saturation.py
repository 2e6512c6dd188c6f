"""The saturation benchmark's throughput target compares each ingest-only saturation run with the
reference runs made just before and after it, not with the ingest scenario's single earlier run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # bench modules import each other
import saturation


def _run(
    clients: int, records_per_s: float, *, reference: bool = False, routed: bool = False
) -> dict[str, Any]:
    load = {
        "records_per_s": records_per_s,
        "requests_ok": 100,
        "rejected_429": 0,
        "request_ms_p50": 10.0,
        "request_ms_p99": 20.0,
        "answer_ms_p99": 20.0,
        "errors": 0,
    }
    return {
        "clients": clients,
        "routed": routed,
        "reference": reference,
        "load_before": (1.0, 1.0, 1.0),
        "load": load,
        "vigil_peak_rss": 2**28,
    }


def _throughput_rows(ingest: float) -> dict[str, tuple[str, str, bool]]:
    runs = [
        _run(8, 600_000, reference=True),
        _run(16, 480_000),
        _run(8, 500_000, reference=True),
        _run(32, 560_000),
        _run(8, 640_000, reference=True),
        _run(16, 300_000, routed=True),
    ]
    section, targets = saturation.render(runs, ingest)
    assert (
        "Reference runs (8 clients, as in the ingest scenario): 600,000, 500,000, 640,000 records/s"
        in section
    )
    return {
        name: (target, measured, met)
        for name, target, measured, met in targets
        if name.startswith("throughput")
    }


def test_throughput_is_compared_with_the_mean_of_the_neighbouring_reference_runs() -> None:
    rows = _throughput_rows(ingest=700_000)  # a lucky earlier ingest run: both would miss against it
    assert set(rows) == {"throughput at saturation, 16 exporters", "throughput at saturation, 32 exporters"}
    target, measured, met = rows["throughput at saturation, 16 exporters"]
    assert "mean of the 2 reference runs (8 clients) just before and after it" in target
    assert measured.startswith("480,000/s vs 550,000/s (0.873x; 0.69x the ingest scenario's 700,000/s)")
    assert not met
    target, measured, met = rows["throughput at saturation, 32 exporters"]
    assert measured.startswith("560,000/s vs 570,000/s (0.982x")  # its own neighbours, not the first reference
    assert met
