"""Vigil agent SDK: send an agent's results for a batch back to Vigil.

`GlassFlow` and `AsyncGlassFlow` are the same classes under the names GlassFlow's agent
examples use, so such agents only need their import line changed.
"""

from __future__ import annotations

from vigil_sdk._version import __version__
from vigil_sdk.client import AsyncVigil, Vigil
from vigil_sdk.errors import VigilAPIError, VigilConnectionError, VigilError, VigilTimeoutError
from vigil_sdk.records import LogRecord, service_name

GlassFlow = Vigil
AsyncGlassFlow = AsyncVigil

__all__ = [
    "AsyncGlassFlow",
    "AsyncVigil",
    "GlassFlow",
    "LogRecord",
    "Vigil",
    "VigilAPIError",
    "VigilConnectionError",
    "VigilError",
    "VigilTimeoutError",
    "__version__",
    "service_name",
]
