"""Error codes of the API contract and the HTTP status each one maps to."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel


class ErrorCode(str, Enum):
    """The seed's error codes plus the access and validation codes."""

    INVALID_IMAGE = "INVALID_IMAGE"
    LOW_QUALITY = "LOW_QUALITY"
    MODEL_ERROR = "MODEL_ERROR"
    TIMEOUT = "TIMEOUT"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    NETWORK_ERROR = "NETWORK_ERROR"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


#: Default HTTP status per code; INVALID_IMAGE uses 415 for a type that is not an image at all.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_IMAGE: 400,
    ErrorCode.LOW_QUALITY: 422,
    ErrorCode.MODEL_ERROR: 500,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.QUOTA_EXCEEDED: 429,
    ErrorCode.NETWORK_ERROR: 503,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}

#: Codes whose failure may succeed on a later attempt (the seed's RETRY_CONFIG).
RETRIABLE: frozenset[ErrorCode] = frozenset({ErrorCode.MODEL_ERROR, ErrorCode.NETWORK_ERROR, ErrorCode.TIMEOUT})


class ErrorInfo(BaseModel):
    """The `error` member of the API envelope."""

    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None
