"""Corrections through the API: validation, shop and status rules, accuracy in /metrics and Prometheus, the metrics
outbox row, and the labelled export (decrypted images + labels, admins only)."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from conftest import ClientFactory, admin_auth, auth, form, token_for
from support import encode, render_lines

from edge_node import keys
from edge_node.store import audit
from edge_node.store import jobs as job_store
from edge_node.store.jobs import NewJob

CORRECTIONS = "/api/v1/ocr/jobs/{}/corrections"


async def _completed_job(client: Any, lines: list[str]) -> dict[str, Any]:
    """OCR a rendered label synchronously; returns the result data."""
    image = encode(render_lines(lines))
    response = await client.post("/api/v1/ocr/process", data=form(image, type="product"), headers=auth())
    assert response.status == 200, await response.text()
    data: dict[str, Any] = (await response.json())["data"]
    data["_image"] = image
    return data


async def _metrics(client: Any) -> dict[str, Any]:
    return (await (await client.get("/api/v1/metrics", headers=admin_auth())).json())["data"]


async def _outbox(client: Any, kind: str) -> list[dict[str, Any]]:
    rows = await client.app[keys.DATABASE].run(
        lambda conn: conn.execute("SELECT payload FROM outbox WHERE kind = ? ORDER BY seq", (kind,)).fetchall()
    )
    return [json.loads(row["payload"]) for row in rows]


async def test_correction_sets_accuracy_metrics_and_queues_a_metrics_row(make_client: ClientFactory) -> None:
    client = await make_client()
    before = await _metrics(client)
    assert before["model_accuracy"] == {"overall": None, "by_field": {}, "corrections": 0}
    prometheus = await (await client.get("/api/v1/metrics/prometheus", headers=admin_auth())).text()
    assert "# TYPE zakpos_ocr_accuracy gauge" in prometheus
    assert "\nzakpos_ocr_accuracy " not in prometheus  # unknown before the first correction, not 0

    result = await _completed_job(client, ["FRESH MILK 1L", "TK 85.00"])
    returned = result["structured"]
    assert returned["price"] == 85.0
    # price kept as returned (typed as text with spaces: still the same value) -> right; sku added -> wrong.
    body = {"fields": {"price": " 85 ", "sku": "MLK-1L"}}
    response = await client.post(CORRECTIONS.format(result["id"]), json=body, headers=auth())
    assert response.status == 200, await response.text()
    saved = (await response.json())["data"]
    assert saved["fields"] == {"price": 85.0, "sku": "MLK-1L"}
    checks = {c["field"]: c["correct"] for c in saved["checks"]}
    assert checks == {"price": True, "sku": False}
    assert saved["accuracy"] == 0.5

    after = await _metrics(client)
    assert after["model_accuracy"] == {"overall": 0.5, "by_field": {"price": 1.0, "sku": 0.0}, "corrections": 1}
    prometheus = await (await client.get("/api/v1/metrics/prometheus", headers=admin_auth())).text()
    assert "\nzakpos_ocr_accuracy 0.5\n" in prometheus
    assert 'zakpos_ocr_field_accuracy{field="sku"} 0.0' in prometheus

    # The same transaction queued a metrics outbox row with explicit points for central's ocr_model_metrics.
    [row] = await _outbox(client, "metrics")
    points = {p["metric_name"]: p for p in row["metrics"]}
    assert set(points) == {"correction.accuracy", "correction.field.price", "correction.field.sku"}
    assert points["correction.accuracy"]["value"] == 0.5
    assert points["correction.field.sku"]["value"] == 0.0
    assert {p["job_id"] for p in row["metrics"]} == {result["id"]}
    assert {p["model_name"] for p in row["metrics"]} == {result["model_used"]}

    # Correcting again replaces the job's correction: still one corrected job, accuracy now 1.
    response = await client.post(CORRECTIONS.format(result["id"]), json={"fields": {"price": 85}}, headers=auth())
    assert response.status == 200
    again = await _metrics(client)
    assert again["model_accuracy"] == {"overall": 1.0, "by_field": {"price": 1.0}, "corrections": 1}
    assert len(await _outbox(client, "metrics")) == 2


async def test_fields_missing_on_both_sides_are_not_counted(make_client: ClientFactory) -> None:
    client = await make_client()
    result = await _completed_job(client, ["BREAD", "TK 40.00"])
    body = {"fields": {"invoice_number": None, "vendor": "", "price": result["structured"]["price"]}}
    saved = (await (await client.post(CORRECTIONS.format(result["id"]), json=body, headers=auth())).json())["data"]
    assert [c["field"] for c in saved["checks"]] == ["price"]
    assert (await _metrics(client))["model_accuracy"]["by_field"] == {"price": 1.0}


async def test_correction_validation(make_client: ClientFactory) -> None:
    client = await make_client()
    result = await _completed_job(client, ["EGGS", "TK 12.00"])
    url = CORRECTIONS.format(result["id"])
    cases: list[tuple[Any, str]] = [
        ({"fields": {"colour": "red"}}, "unknown field"),
        ({"fields": {"confidence": {"price": 1.0}}}, "unknown field"),
        ({"fields": {"price": "twelve"}}, "invalid field value"),
        ({"fields": {}}, "at least one field"),
        ({"price": 12}, "at least one field"),
        ([1, 2], "at least one field"),
        ({"fields": {"product_name": "x" * 1001}}, "longer than"),
    ]
    for body, message in cases:
        response = await client.post(url, json=body, headers=auth())
        assert response.status == 400, body
        error = (await response.json())["error"]
        assert error["code"] == "VALIDATION_ERROR" and message in error["message"], (body, error)
    response = await client.post(url, data=b"{not json", headers={**auth(), "Content-Type": "application/json"})
    assert response.status == 400
    unknown = await client.post(url, json={"fields": {"colour": "red"}}, headers=auth())
    assert "price" in (await unknown.json())["error"]["details"]["allowed"]
    # No token: 401; another shop's token: 403 (the node serves one shop).
    assert (await client.post(url, json={"fields": {"price": 1}})).status == 401
    other = {"Authorization": f"Bearer {token_for('shop-b')}"}
    assert (await client.post(url, json={"fields": {"price": 1}}, headers=other)).status == 403
    assert (await _metrics(client))["model_accuracy"]["corrections"] == 0


async def test_only_completed_jobs_of_the_callers_shop(make_client: ClientFactory) -> None:
    client = await make_client()
    db = client.app[keys.DATABASE]
    body = {"fields": {"price": 1.0}}
    assert (await client.post(CORRECTIONS.format("no-such-job"), json=body, headers=auth())).status == 404
    # A job of another shop (as if the database were shared) does not exist for this caller.
    foreign, _ = await db.run(
        job_store.insert_job, NewJob("shop-b", "u", "product", {}, None, None), job_store.new_job_id()
    )
    response = await client.post(CORRECTIONS.format(foreign.id), json=body, headers=auth())
    assert response.status == 404 and (await response.json())["error"]["code"] == "NOT_FOUND"
    # A failed job (an undecodable upload) cannot be corrected: 409.
    await client.post("/api/v1/ocr/process", data=form(b"not an image"), headers=auth())
    jobs = (await (await client.get("/api/v1/ocr/jobs?status=failed", headers=auth())).json())["data"]["jobs"]
    response = await client.post(CORRECTIONS.format(jobs[0]["job_id"]), json=body, headers=auth())
    assert response.status == 409 and (await response.json())["error"]["code"] == "VALIDATION_ERROR"
    # A queued job neither.
    queued, _ = await db.run(
        job_store.insert_job, NewJob("shop-a", "u", "product", {}, None, None), job_store.new_job_id()
    )
    # (its status may move on if a worker claims it; it is never completed: there is no image)
    response = await client.post(CORRECTIONS.format(queued.id), json=body, headers=auth())
    assert response.status == 409


async def test_export_is_a_tar_of_decrypted_images_and_labels(make_client: ClientFactory) -> None:
    client = await make_client()
    first = await _completed_job(client, ["RICE 5KG", "TK 450.00"])
    second = await _completed_job(client, ["SUGAR 1KG", "TK 120.00"])
    uncorrected = await _completed_job(client, ["SALT", "TK 30.00"])
    for job, price in ((first, 455.0), (second, 120.0)):
        body = {"fields": {"price": price, "product_name": "Label " + job["id"][:4]}}
        assert (await client.post(CORRECTIONS.format(job["id"]), json=body, headers=auth())).status == 200
    # A corrected job whose image was purged is left out.
    purged = await _completed_job(client, ["OIL 1L", "TK 190.00"])
    await client.post(CORRECTIONS.format(purged["id"]), json={"fields": {"price": 190}}, headers=auth())
    await client.app[keys.DATABASE].run(
        lambda conn: conn.execute("DELETE FROM images WHERE job_id = ?", (purged["id"],))
    )

    assert (await client.get("/api/v1/ocr/corrections/export", headers=auth())).status == 403
    response = await client.get("/api/v1/ocr/corrections/export", headers=admin_auth())
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-tar"
    assert "attachment" in response.headers["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(await response.read())) as archive:
        _check_archive(archive, (first, second), uncorrected)
    # Each exported image read is in the image audit log, with the admin and the reason.
    entries = await client.app[keys.DATABASE].run(audit.entries)
    exported = {(e.job_id, e.user_id, e.action) for e in entries if e.reason == "corrections export"}
    assert exported == {(first["id"], "admin-1", "read"), (second["id"], "admin-1", "read")}


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    handle = archive.extractfile(name)
    assert handle is not None, name
    return handle.read()


def _check_archive(
    archive: tarfile.TarFile, corrected: tuple[dict[str, Any], ...], uncorrected: dict[str, Any]
) -> None:
    names = archive.getnames()
    assert names[-1] == "manifest.jsonl"
    manifest = [json.loads(line) for line in _member(archive, "manifest.jsonl").splitlines()]
    assert {entry["job_id"] for entry in manifest} == {job["id"] for job in corrected}
    assert uncorrected["id"] not in "".join(names)
    for entry, job in zip(manifest, corrected, strict=True):
        assert entry["image"] == f"images/{job['id']}.png"
        image = _member(archive, entry["image"])
        assert image == job["_image"]  # decrypted back to the uploaded bytes
        labels = json.loads(_member(archive, entry["labels"]))
        assert labels["corrected"]["product_name"] == "Label " + job["id"][:4]
        assert labels["labels"]["product_name"] == "Label " + job["id"][:4]
        assert labels["returned"]["price"] == job["structured"]["price"]
        assert labels["type"] == "product" and labels["corrected_by"] == "clerk-1"


async def test_export_of_a_node_without_corrections_is_an_empty_archive(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/api/v1/ocr/corrections/export", headers=admin_auth())
    assert response.status == 200
    with tarfile.open(fileobj=io.BytesIO(await response.read())) as archive:
        assert archive.getnames() == ["manifest.jsonl"]
