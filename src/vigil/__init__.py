"""Vigil: OpenTelemetry in, incidents and agents' actions out."""

from __future__ import annotations

__version__ = "0.1.0"
