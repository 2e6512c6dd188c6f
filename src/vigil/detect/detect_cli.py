"""`vigil detect FILE.csv`: score a `timestamp,value` CSV with the streaming detector.

Rows are read and scored one at a time, in the order of the file (their arrival order), so each output
score depends only on the rows before it and the row itself, exactly as the detector would see them
live. Timestamps are taken as they come, as a live stream has them:

* out of order (a timestamp earlier than one before it): scored where it arrives, against everything
  seen so far; its time of day still places it in the detector's daily profile;
* duplicate (the same timestamp again): each row is its own point, scored in turn;
* missing (a gap between rows): nothing is filled in; the next row is scored when it arrives.

Only a malformed row (wrong field count, a timestamp or value that cannot be read, a value that is
not finite) stops the run, with an error naming its line.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from vigil.detect.anomaly import DetectorConfig, StreamingDetector

__all__ = ["DetectInputError", "parse_timestamp", "run_detect"]


class DetectInputError(ValueError):
    """A malformed input file; `line` is the 1-based line number in the file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch for `2014-04-01 00:00:00`, ISO 8601 or epoch-seconds text.

    Timestamps without a zone are taken as UTC. Raises ValueError when the text is none of these.
    """
    raw = text.strip()
    if not raw:
        raise ValueError("empty timestamp")
    try:
        number = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ValueError(f"timestamp is not finite: {raw!r}")
        return number
    iso = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"unrecognised timestamp {raw!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def run_detect(input_path: Path, output: TextIO, config: DetectorConfig | None = None) -> None:
    """Read `timestamp,value` rows from `input_path`, write `timestamp,value,anomaly_score` rows.

    Timestamps and values are echoed as given; every well-formed row is scored in file order, whatever
    its timestamp does (see the module docstring). Blank lines are skipped. Raises `DetectInputError`
    (a ValueError) naming the line of the first malformed row; rows before it are already written.
    """
    detector = StreamingDetector(config)
    writer = csv.writer(output, lineterminator="\n")
    with input_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DetectInputError(1, "empty file, expected a 'timestamp,value' header")
        names = [h.strip().lower() for h in header]
        if names != ["timestamp", "value"]:
            raise DetectInputError(1, f"expected header 'timestamp,value', got {','.join(header)!r}")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2:
                raise DetectInputError(line, f"expected 2 fields (timestamp,value), got {len(row)}")
            ts_text, value_text = row[0].strip(), row[1].strip()
            try:
                timestamp = parse_timestamp(ts_text)
            except ValueError as exc:
                raise DetectInputError(line, str(exc)) from None
            try:
                value = float(value_text)
            except ValueError:
                raise DetectInputError(line, f"value is not a number: {value_text!r}") from None
            if not math.isfinite(value):
                raise DetectInputError(line, f"value is not finite: {value_text!r}")
            score = detector.update(timestamp, value)
            writer.writerow([ts_text, value_text, f"{score:.6f}"])
