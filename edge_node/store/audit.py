"""The image audit log: every read (and deletion) of a stored image, with who, when, which job and why.

Rows are written by `store.images.ImageVault` on the database thread, in the same call as the read, so an image
cannot be decrypted without its row (a failing write fails the read). The log holds no image data and is kept
after the image itself is purged: it is the record that the image existed and who saw it. Rows older than
`storage.audit_retention_days` (365) are deleted by the node's periodic purge (app.py).
Admins read it through GET /api/v1/audit/images (api/audit.py), their own shop's rows only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from edge_node.store.db import utc_now

#: The node's own reads (a worker reloading an upload after a restart or for a retry).
SYSTEM_ROLE = "system"
WORKER_USER = "worker"
#: Actions recorded.
READ = "read"
DELETE = "delete"


@dataclass(frozen=True, slots=True)
class ImageAccess:
    """Who reads an image and why."""

    user_id: str
    role: str
    shop_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of `image_audit_log`."""

    id: int
    job_id: str
    shop_id: str
    user_id: str
    role: str
    action: str
    reason: str
    at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> AuditEntry:
        return cls(id=row["id"], job_id=row["job_id"], shop_id=row["shop_id"], user_id=row["user_id"],
                   role=row["role"], action=row["action"], reason=row["reason"], at=row["at"])


def worker_access(shop_id: str, reason: str) -> ImageAccess:
    """The access of the node itself (no user behind it)."""
    return ImageAccess(user_id=WORKER_USER, role=SYSTEM_ROLE, shop_id=shop_id, reason=reason)


def record(conn: sqlite3.Connection, job_id: str, access: ImageAccess, action: str = READ) -> None:
    """Append one row."""
    conn.execute(
        "INSERT INTO image_audit_log (job_id, shop_id, user_id, role, action, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (job_id, access.shop_id, access.user_id, access.role, action, access.reason, utc_now()),
    )


def entries(conn: sqlite3.Connection, job_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The most recent rows, of one job or of all, newest first."""
    if job_id is None:
        rows = conn.execute("SELECT * FROM image_audit_log ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            "SELECT * FROM image_audit_log WHERE job_id = ? ORDER BY id DESC LIMIT ?", (job_id, limit)
        )
    return [AuditEntry.from_row(row) for row in rows]


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which rows of one shop to read: `since` inclusive, `until` exclusive (timestamps as stored, see
    `timestamp`), `before_id` for the next page (rows older than the last one read), at most `limit`."""

    shop_id: str
    limit: int
    job_id: str | None = None
    since: str | None = None
    until: str | None = None
    before_id: int | None = None


def timestamp(moment: datetime) -> str:
    """A moment in the stored form (ISO 8601 UTC, milliseconds), so text comparison is time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def search(conn: sqlite3.Connection, query: AuditQuery) -> list[AuditEntry]:
    """The rows of one shop matching `query`, newest first (ids grow with time)."""
    where: list[str] = ["shop_id = ?"]
    args: list[str | int] = [query.shop_id]
    for clause, value in (("job_id = ?", query.job_id), ("at >= ?", query.since), ("at < ?", query.until),
                          ("id < ?", query.before_id)):
        if value is not None:
            where.append(clause)
            args.append(value)
    rows = conn.execute(
        f"SELECT * FROM image_audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        (*args, query.limit),
    )
    return [AuditEntry.from_row(row) for row in rows]


def purge_older_than(conn: sqlite3.Connection, cutoff: datetime) -> int:
    """Delete the rows written before `cutoff` (audit retention); returns how many went."""
    return conn.execute("DELETE FROM image_audit_log WHERE at < ?", (timestamp(cutoff),)).rowcount
