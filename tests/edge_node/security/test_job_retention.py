"""A node that runs for months: finished jobs past `storage.job_retention_days` are purged at start-up (and every
purge interval) with their stored image; recent ones and the unsynced outbox stay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_node import keys
from edge_node.store.db import connect
from tests.edge_node.security.helpers import SecureClient, bearer, encode, run_db, upload
from tests.support import render_lines


async def test_start_up_purge_removes_old_finished_jobs_and_their_images(secure_client: SecureClient) -> None:
    first = await secure_client()
    job_ids = []
    for text in ("MILK 45", "TEA 30"):
        response = await first.post("/api/v1/ocr/process", data=upload(encode(render_lines([text]), "PNG")),
                                    headers=bearer())
        assert response.status == 200
        job_ids.append((await response.json())["data"]["id"])
    data_dir = Path(first.app[keys.CONFIG].storage.data_dir)
    images = data_dir / "images"
    assert len(list(images.glob("*.bin"))) == 2
    await first.close()

    old, recent = job_ids
    conn = connect(data_dir / "edge.sqlite3")
    stamp = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="milliseconds")
    conn.execute("UPDATE ocr_processing_jobs SET updated_at = ? WHERE id = ?", (stamp, old))
    outbox = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    conn.close()

    client = await secure_client(storage={"job_retention_days": 30})
    for _ in range(200):
        rows = await run_db(client, "SELECT id FROM ocr_processing_jobs")
        if len(rows) == 1:
            break
        await asyncio.sleep(0.02)
    assert [row["id"] for row in rows] == [recent]
    for _ in range(200):
        if len(list(images.glob("*.bin"))) == 1:
            break
        await asyncio.sleep(0.02)
    assert [path.stem for path in images.glob("*.bin")] == [recent]
    assert (await run_db(client, "SELECT COUNT(*) AS n FROM outbox"))[0]["n"] == outbox
    response = await client.get(f"/api/v1/ocr/jobs/{old}", headers=bearer())
    assert response.status == 404
