"""The node's error root. Library errors are translated into these at the boundary (`raise ... from err`)."""

from __future__ import annotations

from typing import Any

from shared_models.errors import HTTP_STATUS, RETRIABLE, ErrorCode


class EdgeError(Exception):
    """Root of every error the node reports to a caller; `code` picks the status, `retriable` the retry policy."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self._status = status

    @property
    def status(self) -> int:
        """HTTP status for this error."""
        return self._status or HTTP_STATUS[self.code]

    @property
    def retriable(self) -> bool:
        """True when running the job again may succeed."""
        return self.code in RETRIABLE


class InvalidImageError(EdgeError):
    """The upload is not a decodable image."""

    code = ErrorCode.INVALID_IMAGE


class LowQualityError(EdgeError):
    """The image decodes but is too small, blank or blurred to read."""

    code = ErrorCode.LOW_QUALITY


class ModelError(EdgeError):
    """An engine failed or is not loaded."""

    code = ErrorCode.MODEL_ERROR


class ProcessingTimeoutError(EdgeError):
    """Processing took longer than the configured bound."""

    code = ErrorCode.TIMEOUT


class QuotaExceededError(EdgeError):
    """Rate limit or queue capacity reached; `retry_after` seconds tells the caller when to come back."""

    code = ErrorCode.QUOTA_EXCEEDED

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ValidationFailedError(EdgeError):
    """A request field is missing or out of range."""

    code = ErrorCode.VALIDATION_ERROR


class PayloadTooLargeError(EdgeError):
    """The upload exceeds the size cap."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnauthorizedError(EdgeError):
    """No valid token."""

    code = ErrorCode.UNAUTHORIZED


class ForbiddenError(EdgeError):
    """A valid token that may not do this."""

    code = ErrorCode.FORBIDDEN


class NotFoundError(EdgeError):
    """No such resource for this caller."""

    code = ErrorCode.NOT_FOUND


class ServiceUnavailableError(EdgeError):
    """The node cannot take work right now (storage failing, shutting down)."""

    code = ErrorCode.SERVICE_UNAVAILABLE


def error_from_code(code: str | None, message: str | None, details: dict[str, Any] | None = None) -> EdgeError:
    """Rebuild the typed error a stored job failed with (the code is kept as text in the database)."""
    for cls in _ERROR_TYPES:
        if cls.code.value == code:
            return cls(message or code or "failed", details=details)
    return EdgeError(message or "the job failed", details=details)


_ERROR_TYPES: tuple[type[EdgeError], ...] = (
    InvalidImageError, LowQualityError, ModelError, ProcessingTimeoutError, ValidationFailedError,
    PayloadTooLargeError, UnauthorizedError, ForbiddenError, NotFoundError, ServiceUnavailableError,
)
