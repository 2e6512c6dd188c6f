"""Errors raised by the clients, split by whether sending again may succeed."""

from __future__ import annotations

from typing import Any


class VigilError(Exception):
    """Base of every error the SDK raises.

    `retryable` is True when the same request may succeed later (the server was unavailable or
    overloaded, the network failed); False when it will fail again until something is changed.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class VigilAPIError(VigilError):
    """Vigil answered with an error status; `code` and `details` come from its JSON error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retryable=is_retryable_status(status))
        self.status = status
        self.code = code
        self.details: dict[str, Any] = details or {}
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class VigilConnectionError(VigilError):
    """The request did not get an answer: connection refused or reset, DNS failure, protocol error."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class VigilTimeoutError(VigilConnectionError):
    """No answer within the client's timeout."""


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500
