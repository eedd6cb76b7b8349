"""Reading the image audit log (GET /api/v1/audit/images) and its retention: admins only, their own shop only,
newest first, filters and paging; the periodic purge (also at start-up) deletes exactly the rows past
`storage.audit_retention_days`."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from edge_node import keys
from edge_node.store import audit
from edge_node.store.audit import AuditQuery
from edge_node.store.db import connect
from tests.edge_node.security.helpers import (
    OTHER_SHOP,
    SHOP,
    SecureClient,
    admin,
    bearer,
    encode,
    run_db,
    upload,
    wait_final,
)
from tests.support import render_lines

AUDIT = "/api/v1/audit/images"
NOW = datetime.now(UTC)

Row = tuple[str, str, str, str, str, datetime]  # job, shop, user, action, reason, at


def _insert(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
    conn.executemany(
        "INSERT INTO image_audit_log (job_id, shop_id, user_id, role, action, reason, at)"
        " VALUES (?, ?, ?, 'admin', ?, ?, ?)",
        [(job, shop, user, action, reason, audit.timestamp(at)) for job, shop, user, action, reason, at in rows],
    )


async def _seed(client: TestClient[Any, Any], rows: Iterable[Row]) -> None:
    await client.app[keys.DATABASE].run(_insert, list(rows))


async def _entries(client: TestClient[Any, Any], headers: dict[str, str] | None = None,
                   **params: str) -> dict[str, Any]:
    response = await client.get(AUDIT, params=params, headers=headers or admin())
    body = await response.json()
    assert response.status == 200, body
    return dict(body["data"])


async def test_clerks_and_anonymous_callers_are_refused(secure_client: SecureClient) -> None:
    client = await secure_client()
    await _seed(client, [("job-1", SHOP, "admin-1", "read", "check", NOW)])
    clerk = await client.get(AUDIT, headers=bearer())
    body = await clerk.json()
    assert clerk.status == 403 and body["error"]["code"] == "FORBIDDEN" and "data" not in body
    assert (await client.get(AUDIT)).status == 401
    assert (await client.get(AUDIT, headers=admin(shop_id=OTHER_SHOP))).status == 403  # a token of another shop


async def test_an_admin_sees_only_their_own_shops_entries(secure_client: SecureClient) -> None:
    client = await secure_client()
    await _seed(client, [
        ("ours-1", SHOP, "admin-1", "read", "refund dispute", NOW - timedelta(minutes=3)),
        ("theirs-1", OTHER_SHOP, "spy", "read", "other shop", NOW - timedelta(minutes=2)),
        ("ours-2", SHOP, "admin-2", "delete", "job deleted", NOW - timedelta(minutes=1)),
        ("theirs-2", OTHER_SHOP, "spy", "delete", "other shop", NOW),
    ])
    data = await _entries(client)
    assert [(e["job_id"], e["user_id"], e["action"], e["reason"]) for e in data["entries"]] == [
        ("ours-2", "admin-2", "delete", "job deleted"), ("ours-1", "admin-1", "read", "refund dispute")]
    assert data["count"] == 2 and data["next_before_id"] is None
    assert set(data["entries"][0]) == {"id", "at", "job_id", "user_id", "role", "action", "reason"}
    # Asking for another shop's job by id finds nothing, whatever the filters.
    assert (await _entries(client, job_id="theirs-1"))["entries"] == []
    assert (await _entries(client, job_id="theirs-2", since=(NOW - timedelta(days=1)).isoformat()))["count"] == 0


async def test_a_real_image_read_is_listed_with_who_when_which_job_and_why(secure_client: SecureClient) -> None:
    client = await secure_client()
    response = await client.post("/api/v1/ocr/process/async", data=upload(encode(render_lines(["TEA 5"]), "PNG")),
                                 headers=bearer())
    job_id = (await response.json())["data"]["job_id"]
    assert (await wait_final(client, job_id, bearer()))["status"] == "completed"
    before = datetime.now(UTC)
    read = await client.get(f"/api/v1/ocr/jobs/{job_id}/image", params={"reason": "customer complaint 17"},
                            headers=admin(user_id="manager-7"))
    assert read.status == 200
    [entry] = (await _entries(client, job_id=job_id, since=(before - timedelta(seconds=1)).isoformat()))["entries"]
    assert (entry["user_id"], entry["role"], entry["action"], entry["reason"]) == (
        "manager-7", "admin", "read", "customer complaint 17")
    assert abs(datetime.fromisoformat(entry["at"]) - before) < timedelta(seconds=30)


async def test_filters_limit_and_paging(secure_client: SecureClient) -> None:
    client = await secure_client()
    # Recent days (older rows would meet the start-up purge): ten rows an hour apart from noon UTC 10 days ago.
    start = (NOW - timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
    day = start.date().isoformat()
    await _seed(client, [(f"job-{n % 2}", SHOP, "admin-1", "read", f"r{n}", start + timedelta(hours=n))
                         for n in range(10)])
    window = await _entries(client, since=f"{day}T14:00:00Z", until=f"{day}T17:00:00+00:00")
    assert [e["reason"] for e in window["entries"]] == ["r4", "r3", "r2"]  # since inclusive, until exclusive
    naive = await _entries(client, since=f"{day}T14:00:00", until=f"{day}T17:00:00")  # UTC when no offset
    assert [e["reason"] for e in naive["entries"]] == ["r4", "r3", "r2"]
    shifted = await _entries(client, since=f"{day}T20:00:00+06:00")  # = 14:00 UTC
    assert shifted["count"] == 8
    assert [e["reason"] for e in (await _entries(client, job_id="job-1", limit="2"))["entries"]] == ["r9", "r7"]
    pages, before_id = [], None
    while True:
        page = await _entries(client, limit="4", **({"before_id": str(before_id)} if before_id else {}))
        pages.append([e["reason"] for e in page["entries"]])
        before_id = page["next_before_id"]
        if before_id is None:
            break
    assert pages == [["r9", "r8", "r7", "r6"], ["r5", "r4", "r3", "r2"], ["r1", "r0"]]


async def test_bad_filters_are_validation_errors(secure_client: SecureClient) -> None:
    client = await secure_client()
    for params in ({"since": "yesterday"}, {"until": "2025-13-01"}, {"limit": "0"}, {"limit": "1001"},
                   {"limit": "ten"}, {"before_id": "-1"}, {"job_id": "x" * 201},
                   {"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"}):
        response = await client.get(AUDIT, params=params, headers=admin())
        body = await response.json()
        assert response.status == 400 and body["error"]["code"] == "VALIDATION_ERROR", (params, body)
    assert (await _entries(client, limit="1000"))["limit"] == 1000  # the cap itself is allowed


def test_purge_deletes_exactly_the_rows_past_the_cutoff(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    cutoff = datetime(2025, 1, 1, tzinfo=UTC)
    _insert(conn, [
        ("old", SHOP, "a", "read", "x", cutoff - timedelta(days=30)),
        ("just-old", SHOP, "a", "read", "x", cutoff - timedelta(milliseconds=1)),
        ("at-cutoff", SHOP, "a", "read", "x", cutoff),
        ("new", OTHER_SHOP, "a", "read", "x", cutoff + timedelta(days=1)),
    ])
    assert audit.purge_older_than(conn, cutoff) == 2
    left = [e.job_id for e in audit.search(conn, AuditQuery(shop_id=SHOP, limit=10))]
    assert left == ["at-cutoff"]
    assert [e.job_id for e in audit.search(conn, AuditQuery(shop_id=OTHER_SHOP, limit=10))] == ["new"]
    assert audit.purge_older_than(conn, cutoff) == 0


async def test_start_up_purge_removes_the_audit_rows_past_retention(secure_client: SecureClient,
                                                                    tmp_path: Path) -> None:
    # The rows exist before the node starts: the purge's first round (at start-up) must take the expired ones.
    first = await secure_client()
    data_dir = Path(first.app[keys.CONFIG].storage.data_dir)
    await first.close()
    conn = connect(data_dir / "edge.sqlite3")
    _insert(conn, [
        ("expired-a", SHOP, "a", "read", "x", NOW - timedelta(days=31)),
        ("expired-b", SHOP, "worker", "read", "retry", NOW - timedelta(days=400)),
        ("kept-a", SHOP, "a", "read", "x", NOW - timedelta(days=29)),
        ("kept-b", SHOP, "a", "delete", "x", NOW - timedelta(hours=1)),
    ])
    conn.close()
    client = await secure_client(storage={"audit_retention_days": 30})
    for _ in range(200):
        rows = await run_db(client, "SELECT job_id FROM image_audit_log ORDER BY id")
        if len(rows) == 2:
            break
        await asyncio.sleep(0.02)
    assert [row["job_id"] for row in rows] == ["kept-a", "kept-b"]
