"""CPU time and memory of processes, read from /proc (Linux only), for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; the fields after it are space-separated.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU time of a process's main thread (its event loop, in Vigil); the rest is its threads'."""
    stat = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE_SIZE


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the highest resident set size of the process since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds, total CPU seconds) summed over all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which is already in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class CpuWindow:
    """CPU used by named processes, and by the whole machine, between `start` and `stop`."""

    pids: dict[str, int]
    started: float = 0.0
    elapsed: float = 0.0
    _begin: dict[str, float] = field(default_factory=dict)
    _machine_begin: tuple[float, float] = (0.0, 0.0)
    cores_used: dict[str, float] = field(default_factory=dict)
    machine_cores_busy: float = 0.0

    def start(self) -> None:
        self._begin = {name: _cpu_or_zero(pid) for name, pid in self.pids.items()}
        self._machine_begin = machine_busy_seconds()
        self.started = time.monotonic()

    def stop(self) -> None:
        self.elapsed = time.monotonic() - self.started
        end = {name: _cpu_or_zero(pid) for name, pid in self.pids.items()}
        busy, _ = machine_busy_seconds()
        self.cores_used = {name: (end[name] - self._begin[name]) / self.elapsed for name in self.pids}
        self.machine_cores_busy = (busy - self._machine_begin[0]) / self.elapsed
        self.cores_used["other processes"] = max(0.0, self.machine_cores_busy - sum(self.cores_used.values()))


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0.0


def children(pid: int) -> list[int]:
    """The direct child processes of `pid` (all its threads')."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def wait_quiet(cores: float = 0.2, window_s: float = 2.0, longest_s: float = 30.0) -> float:
    """Until the machine's busy cores over `window_s` fall under `cores` (what the scenario before
    left running, a process still exiting or the kernel writing back its files, settles), at most
    `longest_s`; the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < longest_s:
        before = machine_busy_seconds()[0]
        time.sleep(window_s)
        if (machine_busy_seconds()[0] - before) / window_s < cores:
            break
    return time.monotonic() - began
