"""Grouping accuracy and throughput of vigil's log template miner on Loghub-style data sets.

Usage::

    .venv/bin/python bench/templates_accuracy.py [DATA_DIR]

DATA_DIR defaults to ``../shared/data/loghub-2k-dev`` relative to the repository root. Every
``*.csv`` in it with ``Content`` and ``EventId`` columns is a data set (Loghub's
``NAME_2k.log_structured.csv``); the name is the file name up to the first ``_``.

For each data set, its ``Content`` column (the message, one per line) goes through the same code as
``vigil templates FILE`` (`run_templates`), and the ``template_id`` column of the CSV it writes is
compared with ``EventId``. Grouping accuracy (GA) as the data set's README defines it: a message is
correct when the set of messages the miner put in its group is exactly the set that shares its
ground-truth EventId; GA is the share of correct messages.

msgs/s times `TemplateMiner.mine` alone (one fresh miner per data set, in the file's order), which
is the per-record cost in a pipeline. All data sets use the one default configuration.

Results (default configuration, loghub-2k-dev; msgs/s on a 2-core machine, varies with load; the
settings are the ones leave-one-dataset-out cross-validation keeps, bench/templates_cv.py):

| dataset | lines | clusters found | ground-truth templates | grouping accuracy | msgs/s |
|---|---:|---:|---:|---:|---:|
| Apache | 2000 | 6 | 6 | 1.000 | 175,292 |
| BGL | 2000 | 121 | 120 | 0.991 | 110,192 |
| HDFS | 2000 | 14 | 14 | 1.000 | 67,921 |
| Hadoop | 2000 | 115 | 114 | 0.994 | 82,538 |
| HealthApp | 2000 | 75 | 75 | 1.000 | 125,402 |
| Linux | 2000 | 115 | 118 | 0.871 | 119,729 |
| OpenStack | 2000 | 43 | 43 | 1.000 | 69,823 |
| Proxifier | 2000 | 8 | 8 | 1.000 | 94,398 |
| **mean** | 16000 | | | **0.982** | 96,548 |

For comparison: Drain's published GA there, tuned per data set, averages 0.830; the drain3 package
(0.9.11, depth 4, threshold 0.4, IP/hex/number masks, one configuration) averages 0.730.
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from vigil.pipeline.templates import TemplateMiner  # noqa: E402
from vigil.pipeline.templates_cli import run_templates  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "loghub-2k-dev"


def grouping_accuracy(predicted: list[str], truth: list[str]) -> float:
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} messages")
    truth_sizes = Counter(truth)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(predicted):
        groups[group].append(index)
    correct = 0
    for members in groups.values():
        events = {truth[i] for i in members}
        if len(events) == 1 and truth_sizes[truth[members[0]]] == len(members):
            correct += len(members)
    return correct / len(truth) if truth else 1.0


def load(path: Path) -> tuple[list[str], list[str]] | None:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"Content", "EventId"} <= set(reader.fieldnames):
            return None
        rows = list(reader)
    # one message per line: a message with a line break would shift every later line
    contents = [" ".join(row["Content"].splitlines()) for row in rows]
    return contents, [row["EventId"] for row in rows]


def evaluate(contents: list[str]) -> tuple[list[str], int, float]:
    """Cluster ids via `run_templates`, the number of clusters, and mining msgs/s."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "messages.txt"
        source.write_text("".join(line + "\n" for line in contents), encoding="utf-8")
        out = io.StringIO()
        run_templates(source, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    if rows[0] != ["template_id", "template"]:
        raise ValueError(f"unexpected header {rows[0]}")
    ids = [row[0] for row in rows[1:]]

    miner = TemplateMiner()
    started = time.perf_counter()
    for message in contents:
        miner.mine(message)
    elapsed = time.perf_counter() - started
    return ids, len(set(ids)), len(contents) / elapsed if elapsed > 0 else float("inf")


def main(argv: list[str]) -> int:
    data = Path(argv[1]) if len(argv) > 1 else DEFAULT_DATA
    files = sorted(p for p in data.iterdir() if p.suffix == ".csv")
    print("| dataset | lines | clusters found | ground-truth templates | grouping accuracy | msgs/s |")
    print("|---|---:|---:|---:|---:|---:|")
    accuracies: list[float] = []
    total_lines = 0
    total_seconds = 0.0
    for path in files:
        loaded = load(path)
        if loaded is None:
            continue
        contents, truth = loaded
        ids, clusters, rate = evaluate(contents)
        accuracy = grouping_accuracy(ids, truth)
        accuracies.append(accuracy)
        total_lines += len(contents)
        total_seconds += len(contents) / rate
        name = path.name.split("_")[0]
        print(f"| {name} | {len(contents)} | {clusters} | {len(set(truth))} | {accuracy:.3f} | {rate:,.0f} |")
    if not accuracies:
        print(f"no data sets in {data}", file=sys.stderr)
        return 1
    mean = sum(accuracies) / len(accuracies)
    overall = total_lines / total_seconds if total_seconds > 0 else float("inf")
    print(f"| **mean** | {total_lines} | | | **{mean:.3f}** | {overall:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
