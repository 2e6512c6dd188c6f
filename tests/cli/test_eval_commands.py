"""`vigil templates` and `vigil detect`: the evaluation commands' formats and errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from typer.testing import CliRunner

from vigil.cli.main import app

runner = CliRunner()


def test_templates_writes_one_row_per_line_in_order(tmp_path: Path) -> None:
    source = tmp_path / "messages.log"
    source.write_text(
        "Connection closed by 10.0.0.1 port 22\nDisk full on /var/log\nConnection closed by 10.0.0.9 port 2222\n"
    )
    result = runner.invoke(app, ["templates", str(source)])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["template_id", "template"]
    assert len(rows) == 4
    assert rows[1] == rows[3] and rows[1][1] == "Connection closed by <*> port <*>"
    assert rows[2][0] != rows[1][0]


def test_detect_scores_every_row_and_rejects_bad_rows(tmp_path: Path) -> None:
    series = tmp_path / "series.csv"
    lines = ["timestamp,value"] + [
        f"2024-01-01 00:{m // 60:02d}:{m % 60:02d},{10 + (m % 3)}" for m in range(400)
    ]
    lines.insert(200, "2024-01-01 00:01:00,11")  # a clock stepping back: scored where it arrives
    lines.append("2024-01-01 00:06:40,500")
    series.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["detect", str(series)])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert len(rows) == 403
    scores = [float(r[2]) for r in rows[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[-1] > max(scores[:-1])

    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01 00:00:00,abc\n")
    failed = runner.invoke(app, ["detect", str(bad)])
    assert failed.exit_code == 1
    assert "line 2" in failed.output
