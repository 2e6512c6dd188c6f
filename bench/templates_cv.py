"""Leave-one-dataset-out cross-validation of the template miner's settings on Loghub-2k.

Usage::

    .venv/bin/python bench/templates_cv.py [DATA_DIR]

The miner has one configuration for every kind of log. Its few settings are chosen from a small grid
(`GRID_AXES`); this script says how well that choice carries over to a kind of log it never saw:

* for each data set of DATA_DIR, the grid point with the best mean grouping accuracy on the *other*
  data sets is chosen and scored on the left-out one;
* the **cross-validated accuracy** is the mean of those left-out accuracies;
* the **whole-dev accuracy** is the mean accuracy of the grid point chosen on every data set.

Grouping accuracy is computed as `bench/templates_accuracy.py` does (the data set's README
definition), mining each data set in file order with a fresh `TemplateMiner`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from templates_accuracy import DEFAULT_DATA, grouping_accuracy, load  # noqa: E402

from vigil.pipeline.templates import TemplateMinerConfig  # noqa: E402
from vigil.pipeline.templates_cli import mine_lines  # noqa: E402

#: The settings searched, as overrides of the defaults: how much of a template a message must
#: repeat to join it, and how many distinct values prove a word position variable.
GRID_AXES: dict[str, list[Any]] = {
    "similarity_threshold": [0.4, 0.5, 0.6],
    "min_distinct_values": [3, 5, 8],
    "max_new_variables": [1, 2],
}


def grid() -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{}]
    for name, values in GRID_AXES.items():
        points = [{**p, name: v} for p in points for v in values]
    return points


def accuracy(contents: list[str], truth: list[str], overrides: dict[str, Any]) -> float:
    rows = mine_lines(contents, replace(TemplateMinerConfig(), **overrides))
    return grouping_accuracy([template_id for template_id, _ in rows], truth)


def describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    datasets: dict[str, tuple[list[str], list[str]]] = {}
    for path in sorted(p for p in args.data_dir.iterdir() if p.suffix == ".csv"):
        loaded = load(path)
        if loaded is not None:
            datasets[path.name.split("_")[0]] = loaded
    if len(datasets) < 2:
        print(f"cross-validation needs at least two data sets in {args.data_dir}", file=sys.stderr)
        return 1
    names = list(datasets)
    candidates = grid()
    table = [{n: accuracy(*datasets[n], c) for n in names} for c in candidates]

    def mean_over(i: int, over: list[str]) -> float:
        return sum(table[i][n] for n in over) / len(over)

    defaults = asdict(TemplateMinerConfig())

    def choose(over: list[str]) -> int:
        """The best mean accuracy; among equals, the point closest to the defaults."""

        def key(i: int) -> tuple[float, int, int]:
            moved = sum(defaults[k] != v for k, v in candidates[i].items())
            return round(mean_over(i, over), 6), -moved, -i

        return max(range(len(candidates)), key=key)

    best_whole = choose(names)
    rows: list[str] = []
    held_out: list[float] = []
    for held in names:
        chosen = choose([n for n in names if n != held])
        held_out.append(table[chosen][held])
        rows.append(
            f"| {held} | {describe(candidates[chosen])} | {table[chosen][held]:.3f} | {table[best_whole][held]:.3f} |"
        )
    cv = sum(held_out) / len(held_out)
    whole = mean_over(best_whole, names)
    print(f"## Loghub leave-one-dataset-out cross-validation ({len(names)} data sets)\n")
    print("| grouping accuracy | mean |")
    print("| --- | ---: |")
    print(f"| **cross-validated** (each data set scored with settings chosen on the others) | **{cv:.3f}** |")
    print(
        f"| **whole dev half** (settings chosen on all: {describe(candidates[best_whole])}) | **{whole:.3f}** |"
    )
    print(f"| lowest left-out data set | {min(held_out):.3f} |")
    print("\n### Folds\n")
    print("| left out | settings chosen on the others | left-out accuracy | with whole-dev settings |")
    print("| --- | --- | ---: | ---: |")
    print("\n".join(rows))
    axes = "; ".join(f"`{k}` {', '.join(str(v) for v in vs)}" for k, vs in GRID_AXES.items())
    print(f"\n### Grid ({len(candidates)} points: {axes}), accuracy per data set\n")
    print("| settings | mean | " + " | ".join(names) + " |")
    print("| --- | ---: |" + " ---: |" * len(names))
    for i in sorted(range(len(candidates)), key=lambda i: -mean_over(i, names)):
        cells = " | ".join(f"{table[i][n]:.3f}" for n in names)
        print(f"| {describe(candidates[i])} | {mean_over(i, names):.3f} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
