"""The response envelope every endpoint answers with: {success, data?, error?: {code, message, details?}}."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edge_node.errors import EdgeError, QuotaExceededError


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A success envelope."""
    return web.json_response({"success": True, "data": data}, status=status, headers=headers)


def error_body(error: EdgeError) -> dict[str, Any]:
    """The `error` member for one EdgeError."""
    body: dict[str, Any] = {"code": error.code.value, "message": error.message}
    if error.details:
        body["details"] = error.details
    return body


def failure(error: EdgeError) -> web.Response:
    """An error envelope with the error's status (and Retry-After for quota errors)."""
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, QuotaExceededError) else None
    return web.json_response({"success": False, "error": error_body(error)}, status=error.status, headers=headers)
