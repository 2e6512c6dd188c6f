"""OTLP Error Summary: a Vigil agent that turns a batch of error logs into one incident summary.

Run with `uvicorn main:app --host 0.0.0.0 --port 8000`; configuration comes from the environment
(see README.md). The pieces live in `error_summary/`: `app.py` (HTTP endpoints and the processing of
a batch with the SDK's `vigil_sdk.engines`) and `settings.py`.
"""

from __future__ import annotations

from error_summary.app import create_app

app = create_app()
