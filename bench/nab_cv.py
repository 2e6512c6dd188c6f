"""Leave-one-category-out cross-validation of the streaming detector's settings on NAB.

Usage::

    .venv/bin/python bench/nab_cv.py [DATA_DIR] [--no-cache]

The detector has no per-series settings; its few global settings are chosen from a small grid
(`GRID`). This script says how well that choice generalises to series of a kind it never saw:

* for each category of DATA_DIR (NAB's folders: artificialWithAnomaly, realAWSCloudwatch, ...), the
  grid point with the best NAB standard score on the *other* categories is chosen and run on the left
  out category;
* the held-out scores of all folds, each from settings chosen without its category, are pooled and
  scored as NAB scores a corpus (one threshold swept over the pooled scores): the **cross-validated
  score**. A stricter variant also fixes each fold's threshold on its training categories;
* the **whole-dev score** is the grid point chosen on every category, scored on them all (what
  `bench/nab_score.py` reports when that point is the default configuration).

A cross-validated score far below the whole-dev one means the settings fit the development series
rather than the problem. Detector outputs are cached under ``.cache/nab-cv/`` keyed by the settings
and the detector's source, so a rerun only computes what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "src"))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from nab_score import (  # noqa: E402
    DEFAULT_DATA,
    PROFILES,
    Point,
    Series,
    load_corpus,
    normalise,
    raw_score,
    run_detector,
    scorable_points,
    sweep,
)

import vigil.detect.anomaly as anomaly  # noqa: E402
import vigil.detect.rolling as rolling  # noqa: E402
from vigil.detect.anomaly import DetectorConfig, StreamingDetector  # noqa: E402

CACHE = REPO_ROOT / ".cache" / "nab-cv"
STANDARD = PROFILES["standard"]

#: The settings searched, as overrides of the defaults. Small on purpose: each axis is a trade-off
#: with a reason to exist, with values a factor two or more apart, not a fit. short: points averaged
#: before the likelihood (noise vs delay); second_short: a second such scale averaged in (0: one
#: scale only); recur_days: days searched for a recurring deviation (0: no recurrence check);
#: suppress: points after an alert in which weaker scores are damped (one alert per anomaly).
GRID_AXES: dict[str, list[Any]] = {
    "short": [1, 3],
    "second_short": [0, 3, 6],
    "recur_days": [0, 7],
    "suppress": [100, 200],
}


def grid() -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{}]
    for name, values in GRID_AXES.items():
        points = [{**p, name: v} for p in points for v in values]
    return points


#: the detector's source as imported (not as on disk later): cached scores belong to this code
SOURCE_DIGEST = hashlib.sha256(
    b"".join(Path(m.__file__ or "").read_bytes() for m in (anomaly, rolling))
).hexdigest()[:12]


def scores_for(corpus: list[Series], overrides: dict[str, Any], use_cache: bool) -> dict[str, list[float]]:
    config = replace(DetectorConfig(), **overrides)
    key = hashlib.sha256(
        json.dumps([SOURCE_DIGEST, sorted(overrides.items())], default=str).encode()
    ).hexdigest()[:16]
    path = CACHE / f"{key}.json"
    if use_cache and path.exists():
        cached: dict[str, list[float]] = json.loads(path.read_text())
        if all(s.name in cached for s in corpus):
            return cached
    results, _ = run_detector(corpus, lambda: StreamingDetector(config))
    if use_cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results))
    return results


@dataclass
class Scored:
    points: dict[str, list[Point]]
    windows: dict[str, int]

    def score(self, names: list[str]) -> tuple[float, float]:
        """(normalised standard score, threshold) of these series, threshold swept on them."""
        pooled = [p for n in names for p in self.points[n]]
        threshold, raw = sweep(pooled, STANDARD)
        return normalise(raw, sum(self.windows[n] for n in names), STANDARD), threshold

    def raw_at(self, names: list[str], threshold: float) -> float:
        return sum(raw_score(self.points[n], threshold, STANDARD)[0] for n in names)


def describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    corpus = load_corpus(args.data_dir)
    categories = sorted({s.category for s in corpus})
    if len(categories) < 2:
        print("cross-validation needs at least two categories", file=sys.stderr)
        return 1
    members = {c: [s.name for s in corpus if s.category == c] for c in categories}
    everything = [s.name for s in corpus]
    n_windows = {s.name: len(s.windows) for s in corpus}

    candidates = grid()
    scored: list[Scored] = []
    for i, overrides in enumerate(candidates):
        print(f"grid point {i + 1}/{len(candidates)}: {describe(overrides)}", file=sys.stderr)
        results = scores_for(corpus, overrides, not args.no_cache)
        points = {s.name: scorable_points(s, results[s.name])[0] for s in corpus}
        scored.append(Scored(points, n_windows))

    whole = [s.score(everything)[0] for s in scored]
    best_whole = max(range(len(candidates)), key=lambda i: (whole[i], -i))

    pooled_points: list[Point] = []
    strict_raw = 0.0
    fold_rows: list[str] = []
    for held in categories:
        train = [n for c in categories if c != held for n in members[c]]
        train_scores = [s.score(train) for s in scored]
        chosen = max(range(len(candidates)), key=lambda i: (train_scores[i][0], -i))
        threshold = train_scores[chosen][1]
        result = scored[chosen]
        pooled_points += [p for n in members[held] for p in result.points[n]]
        strict_raw += result.raw_at(members[held], threshold)
        held_score = result.score(members[held])[0]
        held_strict = normalise(
            result.raw_at(members[held], threshold), sum(n_windows[n] for n in members[held]), STANDARD
        )
        fold_rows.append(
            f"| {held} | {describe(candidates[chosen])} | {train_scores[chosen][0]:.1f} | {held_score:.1f} |"
            f" {held_strict:.1f} | {scored[best_whole].score(members[held])[0]:.1f} |"
        )
    total_windows = sum(n_windows.values())
    cv_score = normalise(sweep(pooled_points, STANDARD)[1], total_windows, STANDARD)
    cv_strict = normalise(strict_raw, total_windows, STANDARD)

    print(f"## NAB leave-one-category-out cross-validation ({len(corpus)} series, {len(categories)} folds)\n")
    print("| standard profile | score |")
    print("| --- | ---: |")
    print(
        f"| **cross-validated** (held-out scores pooled, one threshold swept, as NAB scores) | **{cv_score:.1f}** |"
    )
    print(
        f"| cross-validated, each fold's threshold also fixed on its training categories | {cv_strict:.1f} |"
    )
    print(
        f"| **whole dev half** (settings chosen on all categories: {describe(candidates[best_whole])}) |"
        f" **{whole[best_whole]:.1f}** |"
    )
    print(f"| gap (whole dev - cross-validated) | {whole[best_whole] - cv_score:.1f} |")
    print("\n### Folds\n")
    print(
        "| left out | settings chosen on the others | their score | left-out score | left-out, training threshold"
        " | left-out, whole-dev settings |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    print("\n".join(fold_rows))
    axes = "; ".join(f"`{k}` {', '.join(str(v) for v in vs)}" for k, vs in GRID_AXES.items())
    print(
        f"\n### Grid ({len(candidates)} points: {axes}), standard score (each category with its own threshold)\n"
    )
    ranked = sorted(range(len(candidates)), key=lambda i: -whole[i])
    print("| settings | whole dev | " + " | ".join(categories) + " |")
    print("| --- | ---: |" + " ---: |" * len(categories))
    for i in ranked:
        per_cat = " | ".join(f"{scored[i].score(members[c])[0]:.1f}" for c in categories)
        print(f"| {describe(candidates[i])} | {whole[i]:.1f} | {per_cat} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
