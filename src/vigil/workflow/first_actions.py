"""First actions before bookkeeping: while workflows of this process are still on their way to their
first action, what follows another's first action (its record, DBOS's checkpoints, the wait before
verification) waits, for at most `DEFER_MAX_S`.

Under a burst of alerts every workflow's work shares one process (one core, by the GIL): the records
after actions taken would otherwise delay the actions not taken yet. A record that waits changes
no guarantee: should the process die first, DBOS runs the step again and the action's idempotency
key makes the repeat a no-op, as for a crash between any action and its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

DEFER_MAX_S = 2.0
"""Longest a record after an action waits for others' first actions (a long storm of alerts)."""
HOLD_S = 10.0
"""Longest a workflow counts as on its way to its first action (a slow analysis, or a start that
another process runs)."""


class FirstActions:
    def __init__(self, defer_max_s: float = DEFER_MAX_S, hold_s: float = HOLD_S) -> None:
        self._defer_max_s = defer_max_s
        self._hold_s = hold_s
        self._pending: dict[str, float] = {}
        """Workflow id -> until when it counts."""
        self._idle = asyncio.Event()

    def begin(self, workflow_id: str) -> None:
        """The workflow is on its way to its first action."""
        self._pending[workflow_id] = time.monotonic() + self._hold_s

    def done(self, workflow_id: str) -> None:
        """Its first action was taken, or it will take none now (approval, escalation, its end)."""
        if self._pending.pop(workflow_id, None) is not None and not self._pending:
            self._idle.set()

    def pending(self) -> int:
        self._prune(time.monotonic())
        return len(self._pending)

    async def quiet(self) -> None:
        """Until no workflow is on its way to its first action, or `defer_max_s`."""
        deadline = time.monotonic() + self._defer_max_s
        while True:
            now = time.monotonic()
            self._prune(now)
            if not self._pending or now >= deadline:
                return
            self._idle.clear()
            wait = min(deadline, min(self._pending.values())) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), wait)

    def _prune(self, now: float) -> None:
        for workflow_id in [w for w, until in self._pending.items() if until <= now]:
            del self._pending[workflow_id]
