"""DELETE /api/v1/ocr/jobs/{id}: the job, its image and its cached result go; its unsent outbox rows keep their
seq but lose their content; nothing (worker, retry, cache, sync) can bring it back."""

from __future__ import annotations

import json
from pathlib import Path

from edge_node import keys
from edge_node.store import jobs as job_store
from edge_node.store.jobs import JobFailure
from tests.edge_node.security.helpers import SHOP, SecureClient, admin, bearer, insert_job, run_db, upload, wait_final
from tests.support import encode, render_lines


async def test_delete_removes_the_job_image_and_result_everywhere(secure_client: SecureClient) -> None:
    client = await secure_client()
    image = encode(render_lines(["WATCH 4999"]))
    accepted = await client.post("/api/v1/ocr/process/async", data=upload(image), headers=bearer())
    job_id = (await accepted.json())["data"]["job_id"]
    assert (await wait_final(client, job_id, bearer()))["status"] == "completed"
    [row] = await run_db(client, "SELECT seq, payload FROM outbox WHERE kind = 'results'")
    assert "WATCH" in json.loads(row["payload"])["result"]["text"]
    blob = Path(client.app[keys.CONFIG].storage.data_dir) / "images" / f"{job_id}.bin"
    assert blob.exists()

    response = await client.delete(f"/api/v1/ocr/jobs/{job_id}", headers=admin())
    assert response.status == 200
    assert (await response.json())["data"] == {"job_id": job_id, "deleted": True, "image_deleted": True,
                                               "unsent_results_redacted": 1}
    assert (await client.get(f"/api/v1/ocr/jobs/{job_id}", headers=bearer())).status == 404
    assert (await client.delete(f"/api/v1/ocr/jobs/{job_id}", headers=admin())).status == 404
    assert not blob.exists() and await run_db(client, "SELECT * FROM images") == []
    # The outbox row keeps its seq (central acks contiguous seqs) but now says only "deleted".
    [after] = await run_db(client, "SELECT seq, payload FROM outbox WHERE kind = 'results'")
    tombstone = json.loads(after["payload"])
    assert after["seq"] == row["seq"]
    assert tombstone["status"] == "deleted" and tombstone["job_id"] == job_id and tombstone["deleted_at"]
    assert "result" not in tombstone and "WATCH" not in after["payload"]
    [audit] = await run_db(client, "SELECT user_id, action, reason FROM image_audit_log")
    assert tuple(audit) == ("admin-1", "delete", "job deleted")
    # The cache forgot the result: the same image is processed again, as a new job.
    again = await client.post("/api/v1/ocr/process", data=upload(image), headers=bearer())
    assert (await again.json())["data"]["cached"] is False


async def test_late_writes_cannot_resurrect_a_deleted_job(secure_client: SecureClient) -> None:
    client = await secure_client()
    job_id = await insert_job(client, SHOP, status="dead")
    assert (await client.delete(f"/api/v1/ocr/jobs/{job_id}", headers=admin())).status == 200
    db = client.app[keys.DATABASE]
    # A worker finishing a stale attempt, a failure report, an admin retry: every write is guarded and misses.
    assert await db.run(job_store.complete_job, job_id, {"text": "late"}, [], 60.0) is None
    assert await db.run(job_store.fail_job, job_id, JobFailure("MODEL_ERROR", "late")) is None
    assert (await client.post(f"/api/v1/ocr/jobs/{job_id}/retry", headers=admin())).status == 404
    assert await run_db(client, "SELECT * FROM ocr_processing_jobs WHERE id = ?", job_id) == []
    assert await run_db(client, "SELECT * FROM outbox") == []
    assert await run_db(client, "SELECT * FROM result_cache") == []


async def test_running_jobs_cannot_be_deleted(secure_client: SecureClient) -> None:
    client = await secure_client()
    running = await insert_job(client, SHOP, status="processing")  # lease far in the future: no worker takes it
    response = await client.delete(f"/api/v1/ocr/jobs/{running}", headers=admin())
    assert response.status == 409 and (await response.json())["error"]["code"] == "VALIDATION_ERROR"
    assert (await client.get(f"/api/v1/ocr/jobs/{running}", headers=bearer())).status == 200
