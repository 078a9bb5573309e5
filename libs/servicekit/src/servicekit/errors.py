"""Typed errors a service raises for the caller's mistakes (mapped to HTTP 4xx)."""

from __future__ import annotations

from typing import Any

from contracts.rpc import ErrorBody


class ServiceError(Exception):
    """A refusal the caller can act on: ``code`` is machine-readable."""

    status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None,
                 details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        if status is not None:
            self.status = status

    def body(self) -> ErrorBody:
        return ErrorBody(code=self.code, message=self.message, status=self.status,
                         details=self.details)


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Forbidden(ServiceError):
    status = 403


class Invalid(ServiceError):
    status = 422


class RpcCallError(Exception):
    """Raised by the RPC client when the service answered with an error."""

    def __init__(self, error: ErrorBody) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


class UnprocessableEvent(Exception):
    """An event that can never be applied (its data is wrong, not the moment).

    A consumer that raises it dead-letters the message at once instead of
    retrying it ``max_deliver`` times.
    """


class CommitThen(Exception):
    """Raised inside a unit of work: commit what was done, then refuse with ``error``.

    For refusals whose side effects must still happen (a late submit expires the
    assignment and records ``task.expired``, then answers 409; a take stores the
    captcha challenge it asks for).
    """

    def __init__(self, error: ServiceError) -> None:
        super().__init__(error.message)
        self.error = error


class NotReady(Exception):
    """An event that cannot be applied *yet* (what it depends on has not arrived).

    A consumer retries it in place, keeping the message in progress, and never
    dead-letters it for waiting.
    """
