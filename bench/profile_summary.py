"""A CPU profile of a running process with py-spy, summarized by what the time was spent on.

`Profiler(pid, seconds, path)` samples the process (all threads, without pausing it) in the
background; `summarize(path)` puts each sample in the first category whose marker occurs in its
stack, in the order of `CATEGORIES`, and returns each category's share of the samples. Samples
of idle threads are not taken, so the shares are of the time the process was busy.

Usage::

    .venv/bin/python bench/profile_summary.py PID SECONDS
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("receivers (OTLP/HTTP, API)", ("uvicorn/", "starlette/", "fastapi/", "vigil/receivers/", "vigil/api/")),
    ("batch ledger (SQL)", ("BatchLedger", "aiosqlite/", "sqlalchemy/", "vigil/store/")),
    ("agent HTTP client", ("Outbound.post", "aiohttp/", "httpx/", "httpcore/")),
    ("router: flatten", ("flatten (vigil/records.py", "flatten_view (vigil/pipeline/view.py")),
    ("router: redact", ("vigil/pipeline/redact.py",)),
    ("router: templates", ("vigil/pipeline/template",)),
    ("router: publish batches", ("Router._publish",)),
    ("router: parse, filter, batch", ("vigil/pipeline/router.py", "vigil/pipeline/batcher.py")),
    ("delivery workers", ("vigil/pipeline/delivery.py", "vigil/pipeline/agent_workers.py")),
    ("bus client (nats-py: writes, reads, acks)", ("nats/",)),
    ("detector", ("vigil/detect/",)),
)
OTHER = "event loop and other"
WAITS = ("(aiosqlite/core.py:59)", "(concurrent/futures/thread.py:81)", "EpollSelector.select")
"""Innermost frames of threads waiting for work (a queue's `get`, the selector), which py-spy
does not always see as idle when it samples without pausing the process: left out."""


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy sampling `pid` for `seconds` into `path` (raw collapsed stacks), when installed."""

    def __init__(self, pid: int, seconds: float, path: Path, rate: int = 200) -> None:
        self.path = path
        self._process: subprocess.Popen[bytes] | None = None
        binary = py_spy()
        if binary is not None:
            self._process = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(max(1, int(seconds))),
                    "--rate",
                    str(rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def wait(self, timeout_s: float = 60.0) -> dict[str, float]:
        """The summary once py-spy is done; empty when py-spy is missing or failed."""
        if self._process is None:
            return {}
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return {}
        return summarize(self.path) if self.path.exists() else {}


def summarize(path: Path) -> dict[str, float]:
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit() or stack.endswith(WAITS):
            continue
        counts[_category(stack)] += int(number)
    total = sum(counts.values()) or 1
    order = [name for name, _ in CATEGORIES] + [OTHER]
    return {name: counts[name] / total for name in order if counts[name]}


def _category(stack: str) -> str:
    for name, markers in CATEGORIES:
        if any(marker in stack for marker in markers):
            return name
    return OTHER


def main() -> None:
    pid, seconds = int(sys.argv[1]), float(sys.argv[2])
    path = Path(f"/tmp/profile-{pid}.txt")
    shares = Profiler(pid, seconds, path).wait(seconds + 60)
    for name, share in shares.items():
        print(f"{share:6.1%}  {name}")


if __name__ == "__main__":
    main()
