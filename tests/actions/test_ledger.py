"""The file ledger: a note per key, private, whole or absent."""

from __future__ import annotations

import stat
from pathlib import Path

from vigil.actions import FileLedger


async def test_notes_round_trip_privately(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "ledger")
    assert await ledger.get("k1") is None
    await ledger.put("k1", {"before": {"started_at": "2026-01-01T00:00:00Z"}})
    await ledger.put("k1", {"before": {"started_at": "2026-01-02T00:00:00Z"}})
    assert await FileLedger(tmp_path / "ledger").get("k1") == {
        "before": {"started_at": "2026-01-02T00:00:00Z"}
    }
    assert await ledger.get("k2") is None
    [note] = (tmp_path / "ledger").iterdir()
    assert stat.S_IMODE(note.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ledger").stat().st_mode) == 0o700
