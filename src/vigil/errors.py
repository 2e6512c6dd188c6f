"""Errors split the way callers must react to them.

`UserError` subclasses are the caller's mistake: they map to a 4xx and retrying the same request
will not help. `TransientError` subclasses are run-time failures that a retry may fix; they carry
`retry_after` where the system knows how long to wait.
"""

from __future__ import annotations

from typing import Any


class VigilError(Exception):
    code = "internal_error"
    status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class UserError(VigilError):
    code = "bad_request"
    status = 400


class InvalidPayload(UserError):
    code = "invalid_payload"
    status = 400


class Unauthorized(UserError):
    code = "unauthorized"
    status = 401


class Forbidden(UserError):
    code = "forbidden"
    status = 403


class NotFound(UserError):
    code = "not_found"
    status = 404


class Conflict(UserError):
    code = "conflict"
    status = 409


class PayloadTooLarge(UserError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(UserError):
    code = "unsupported_media_type"
    status = 415


class ClientGone(UserError):
    """The client closed the connection mid-request: nobody is left to answer, nothing to log."""

    code = "client_closed_request"
    status = 499


class ValidationFailed(UserError):
    code = "validation_error"
    status = 422


class MessageTooLarge(VigilError):
    """The bus will never take this message as it is: split or cut it, never retry it whole."""

    code = "message_too_large"
    status = 413


class TransientError(VigilError):
    """A failure that may succeed on retry."""

    code = "unavailable"
    status = 503

    def __init__(
        self, message: str, *, retry_after: float = 1.0, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Backpressure(TransientError):
    """The bus or an in-process buffer is over its limit: shed load, tell the client when to retry."""

    code = "overloaded"
    status = 429


class DeliveryError(Exception):
    """An attempt to hand work to an agent or a sink failed.

    `retryable` says whether another attempt may succeed (5xx, timeouts, connection errors) or
    whether the work must go to the dead-letter store at once (4xx, invalid configuration).

    The message is logged, stored with the batch and in dead letters, and shown by the API, so it
    is scrubbed here, once for every path: URLs masked, secret-looking text redacted, length capped.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        from vigil.masking import scrub  # imported late: the masking rules import most of the package

        super().__init__(scrub(message))
        self.retryable = retryable
        self.status = status


class TicketError(DeliveryError):
    """A ticket system (GitHub, GitLab, Jira, Linear) refused or failed an operation.

    `retryable` as for `DeliveryError`: 5xx, 429, timeouts and connection errors may succeed on a
    later attempt; 4xx answers (bad credentials, unknown repository or project, invalid input) will
    not. `retry_after` is the wait the system asked for, when it said. Messages never hold a token.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        system: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable, status=status)
        self.system = system
        self.retry_after = retry_after
