"""GET /api/v1/audit/images: the image audit log of the caller's shop (admins only), newest first.

Each entry says who (user id and role; `worker`/`system` for the node's own reads), when, which job, what
(read or delete) and why. Filters: `job_id`, `since` (inclusive) and `until` (exclusive) as ISO 8601 times (UTC
when no offset is given), `limit` (default 100, at most 1000), and `before_id` to page back: pass the
`next_before_id` of the previous answer. Rows are kept for `storage.audit_retention_days` (see store/audit.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from edge_node import keys
from edge_node.api.envelope import ok
from edge_node.api.middlewares import admin_of
from edge_node.errors import ValidationFailedError
from edge_node.store import audit
from edge_node.store.audit import AuditEntry, AuditQuery

#: Longest page: an admin's review screen or an export script pages with before_id beyond it.
MAX_AUDIT_LIMIT = 1000
DEFAULT_AUDIT_LIMIT = 100
#: Job ids are UUIDs; anything much longer is not one of ours.
MAX_JOB_ID_CHARS = 200


def _time(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise ValidationFailedError(f"{name} must be an ISO 8601 time, e.g. 2025-01-31T00:00:00Z") from err
    return audit.timestamp(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def _integer(name: str, value: str | None, default: int | None, low: int, high: int) -> int | None:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as err:
        raise ValidationFailedError(f"{name} must be an integer") from err
    if not low <= number <= high:
        raise ValidationFailedError(f"{name} must be between {low} and {high}")
    return number


def _query(request: web.Request, shop_id: str) -> AuditQuery:
    params = request.query
    job_id = params.get("job_id") or None
    if job_id is not None and len(job_id) > MAX_JOB_ID_CHARS:
        raise ValidationFailedError(f"job_id is longer than {MAX_JOB_ID_CHARS} characters")
    since, until = _time("since", params.get("since")), _time("until", params.get("until"))
    if since is not None and until is not None and since >= until:
        raise ValidationFailedError("since must be before until")
    limit = _integer("limit", params.get("limit"), DEFAULT_AUDIT_LIMIT, 1, MAX_AUDIT_LIMIT)
    before_id = _integer("before_id", params.get("before_id"), None, 1, 2**63 - 1)
    return AuditQuery(shop_id=shop_id, limit=int(limit or DEFAULT_AUDIT_LIMIT), job_id=job_id, since=since,
                      until=until, before_id=before_id)


def entry_view(entry: AuditEntry) -> dict[str, object]:
    """One entry as the API shows it."""
    return {"id": entry.id, "at": entry.at, "job_id": entry.job_id, "user_id": entry.user_id, "role": entry.role,
            "action": entry.action, "reason": entry.reason}


async def list_image_audit(request: web.Request) -> web.Response:
    """GET /api/v1/audit/images?job_id=&since=&until=&limit=&before_id=: who read or deleted which stored image,
    when and why; the caller's shop only, newest first (admins only)."""
    principal = admin_of(request)
    query = _query(request, principal.shop_id)
    found = await request.app[keys.DATABASE].run(audit.search, query)
    more = len(found) == query.limit
    return ok({
        "entries": [entry_view(entry) for entry in found],
        "count": len(found),
        "limit": query.limit,
        "next_before_id": found[-1].id if more else None,
    })
