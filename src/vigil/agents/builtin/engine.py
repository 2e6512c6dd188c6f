"""What the built-in agents ask of an analysis engine, so one engine can stand in for another."""

from __future__ import annotations

from typing import Protocol

from vigil.agents.builtin.models import Analysis, Evidence


class Engine(Protocol):
    # A read-only member, so engines may declare `name = "rules"`, a ClassVar or a Final alike.
    @property
    def name(self) -> str: ...

    async def analyze(self, evidence: Evidence) -> Analysis: ...
