"""What every sink is."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import httpx

from vigil.outbound import post
from vigil.outputs import OutputEnvelope
from vigil.specs import SinkSpec

__all__ = ["Sink", "SinkFactory", "post"]


class Sink(ABC):
    """Delivers agent outputs to one configured destination.

    Sinks share the runtime's `httpx.AsyncClient` and do not own it, so `aclose` leaves it open.
    """

    name: str

    @abstractmethod
    async def deliver(self, output: OutputEnvelope) -> None:
        """Deliver once; raise `DeliveryError` (retryable or not) on failure. Retrying is the caller's."""

    async def aclose(self) -> None:
        return None


SinkFactory = Callable[[SinkSpec, httpx.AsyncClient], Sink]
