"""The dashboard API's error: an HTTP status and a code, answered as the envelope {success: false, error}."""

from __future__ import annotations

from typing import Any

from central_sync.errors import CentralError


class DashboardError(CentralError):
    """A refused or failed dashboard request; `status` is the HTTP status, `code` the envelope's error code."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, retriable=status >= 500)
        self.status = status
        self.code = code
        self.details = details

    def body(self) -> dict[str, Any]:
        """The error envelope."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"success": False, "error": error}
