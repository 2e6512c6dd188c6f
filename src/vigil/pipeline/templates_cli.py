"""`vigil templates FILE`: the template of every line of a file, as CSV, for evaluation.

Each input line is one message. The file is mined in one pass and written in a second: every line
gets the id and template of its cluster *at the end of the file*, so that lines whose clusters were
merged later (see `vigil.pipeline.templates`) share one id. Grouping accuracy, the usual measure
of template miners, compares exactly these final groups with the ground truth.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from vigil.pipeline.templates import TemplateMiner, TemplateMinerConfig

__all__ = ["mine_lines", "run_templates"]


def mine_lines(lines: list[str], config: TemplateMinerConfig | None = None) -> list[tuple[str, str]]:
    """`(template_id, template)` for each message, from the clusters as they are after the last."""
    miner = TemplateMiner(config)
    matches = [miner.mine(line) for line in lines]
    final: dict[str, tuple[str, str]] = {}
    out: list[tuple[str, str]] = []
    for match in matches:
        row = final.get(match.template_id)
        if row is None:
            live = miner.resolve(match.template_id)
            # a message mined past `max_clusters` has no cluster: its own template stands
            row = final[match.template_id] = (live, miner.template(live) or match.template)
        out.append(row)
    return out


def run_templates(input_path: Path, output: TextIO) -> None:
    """Read one message per line from `input_path`; write CSV `template_id,template` per line."""
    with input_path.open(encoding="utf-8", errors="replace", newline="\n") as handle:
        lines = [line.rstrip("\r\n") for line in handle]
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(["template_id", "template"])
    for template_id, template in mine_lines(lines):
        writer.writerow([template_id, template])
