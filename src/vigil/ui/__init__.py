"""The web UI's assets (HTML, CSS, ES modules, icons), served by the API at `/`."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
