"""A benchmark script's JSON result on stdout, written whole.

The scripts run under `bench/run.py`, which reads their stdout through a pipe. An event loop (uvloop)
may leave that pipe's descriptor non-blocking, and with `PYTHONUNBUFFERED=1` `print` writes it once,
unbuffered: a result larger than the pipe's 64 KiB then lost its tail whenever the reader was slow."""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def print_json(value: Any, indent: int | None = None) -> None:
    sys.stdout.flush()
    descriptor = sys.stdout.fileno()
    os.set_blocking(descriptor, True)
    data = memoryview((json.dumps(value, indent=indent) + "\n").encode())
    while data:
        data = data[os.write(descriptor, data) :]
