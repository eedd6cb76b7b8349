"""Corrections: a clerk fixes a job's structured fields; an admin exports the corrections as a labelled data set.

- `POST /api/v1/ocr/jobs/{job_id}/corrections` `{"fields": {"price": 12.5, ...}}`: field names and types are those
  of `shared_models.ocr.StructuredFields`; the job must be a completed job of the caller's shop (else 404/409).
- `GET /api/v1/ocr/corrections/export` (admins): a tar streamed as it is built, of `images/<job>.<ext>` (decrypted
  from the image vault, metadata stripped) + `labels/<job>.json`, and `manifest.jsonl` last, for corrected jobs
  whose image is still stored. Every image read is written to the image audit log (reason "corrections export").
"""

from __future__ import annotations

import asyncio
import json
import logging
import tarfile
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from edge_node import keys
from edge_node.api.envelope import ok
from edge_node.api.middlewares import admin_of, principal_of
from edge_node.errors import EdgeError, NotFoundError, PayloadTooLargeError, ValidationFailedError
from edge_node.pipeline.metadata import strip_metadata
from edge_node.store import corrections as correction_store
from edge_node.store import jobs as job_store
from edge_node.store.audit import ImageAccess
from shared_models.jobs import JobStatus
from shared_models.ocr import StructuredFields

_LOGGER = logging.getLogger(__name__)

#: A correction is a handful of short fields; anything bigger is not one.
MAX_BODY_BYTES = 64_000
#: Longest text value a clerk may type into one field.
MAX_TEXT_CHARS = 1000
#: Corrected jobs read from the database per export page (bounds memory while streaming).
EXPORT_PAGE = 50
#: The reason written to the image audit log for each image the export reads.
EXPORT_REASON = "corrections export"
TAR_BLOCK = 512
#: Image signatures -> file extension in the export (the vault keeps the upload's bytes, not its name).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF8", "gif"), (b"BM", "bmp"),
    (b"II*\x00", "tif"), (b"MM\x00*", "tif"),
)


def _parse_fields(body: Any) -> dict[str, Any]:
    """The `fields` member checked against StructuredFields; returns the values in the fields' types."""
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, dict) or not fields:
        raise ValidationFailedError('send a JSON object {"fields": {"<field>": <value>, ...}} with at least one field')
    allowed = correction_store.CORRECTABLE_FIELDS
    unknown = sorted(str(name) for name in fields if name not in allowed)
    if unknown:
        raise ValidationFailedError(
            f"unknown field(s): {', '.join(unknown)}", details={"unknown": unknown, "allowed": list(allowed)}
        )
    long_text = sorted(name for name, value in fields.items() if isinstance(value, str) and len(value) > MAX_TEXT_CHARS)
    if long_text:
        raise ValidationFailedError(f"values longer than {MAX_TEXT_CHARS} characters", details={"fields": long_text})
    try:
        validated = StructuredFields.model_validate(fields)
    except ValidationError as err:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in err.errors()]
        raise ValidationFailedError("invalid field value(s)", details={"errors": problems}) from err
    return validated.model_dump(mode="json", include=set(fields))


async def save_correction(request: web.Request) -> web.Response:
    """POST /api/v1/ocr/jobs/{job_id}/corrections: store the clerk's values and the accuracy they imply."""
    principal = principal_of(request)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"a correction is at most {MAX_BODY_BYTES} bytes")
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"a correction is at most {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise ValidationFailedError("the body must be JSON") from err
    fields = _parse_fields(body)
    job_id = request.match_info["job_id"]
    db = request.app[keys.DATABASE]
    job = await db.run(job_store.get_job, job_id, principal.shop_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    if job.status is not JobStatus.COMPLETED:
        raise ValidationFailedError(
            f"job {job_id} is {job.status.value}; only completed jobs can be corrected", status=409
        )
    correction = await db.run(correction_store.save, job, principal.user_id, fields)
    return ok(
        {
            "job_id": job.id,
            "fields": correction.fields,
            "checks": [
                {"field": c.field, "returned": c.returned, "corrected": c.corrected, "correct": c.correct}
                for c in correction.checks
            ],
            "accuracy": correction.accuracy,
            "updated_at": correction.updated_at,
        }
    )


def _extension(image: bytes) -> str:
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "webp"
    return next((ext for magic, ext in _SIGNATURES if image.startswith(magic)), "bin")


def tar_member(name: str, data: bytes, mtime: float) -> bytes:
    """One tar member (header + data padded to the block size), ready to stream."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % TAR_BLOCK)


def tar_end(written: int) -> bytes:
    """Two zero blocks, then zeros up to a whole tar record, as tarfile itself ends an archive."""
    end = written + 2 * TAR_BLOCK
    return b"\0" * (2 * TAR_BLOCK + (-end % tarfile.RECORDSIZE))


def labels_of(item: correction_store.ExportItem, image_name: str) -> dict[str, Any]:
    """The label document of one exported image: the corrected fields over what the node returned."""
    job = item.job
    result = job.result or {}
    returned = {k: v for k, v in (result.get("structured") or {}).items() if k in correction_store.CORRECTABLE_FIELDS}
    return {
        "job_id": job.id,
        "image": image_name,
        "type": job.document_type,
        "language": job.options.get("language"),
        "model_used": result.get("model_used") or job.model_used,
        "text": result.get("text"),
        "returned": returned,
        "corrected": item.fields,
        "labels": {**returned, **item.fields},
        "corrected_by": item.user_id,
        "corrected_at": item.updated_at,
    }


async def export_corrections(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/ocr/corrections/export: the labelled data set as a streamed tar (admins only)."""
    principal = admin_of(request)
    vault = request.app[keys.VAULT]  # the app's vault: same folder, current and retired keys
    access = ImageAccess(principal.user_id, principal.role, principal.shop_id, EXPORT_REASON)
    db = request.app[keys.DATABASE]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/x-tar",
            "Content-Disposition": f'attachment; filename="corrections-{principal.shop_id}-{stamp}.tar"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    now = time.time()
    written = 0
    manifest: list[str] = []
    cursor = ""
    while True:
        items = await db.run(correction_store.exportable, principal.shop_id, cursor, EXPORT_PAGE)
        for item in items:
            stored = await db.run(vault.read, item.job.id, access)  # audited by the vault
            if stored is None:  # purged between the query and the read
                continue
            try:  # stored images are stripped at upload; this guards blobs written before that rule existed
                image = await loop.run_in_executor(None, strip_metadata, stored)
            except EdgeError as err:
                _LOGGER.warning("the export skips the image of job %s: %s", item.job.id, err.message)
                continue
            image_name = f"images/{item.job.id}.{_extension(image)}"
            labels_name = f"labels/{item.job.id}.json"
            labels = json.dumps(labels_of(item, image_name), ensure_ascii=False, indent=2).encode()
            chunk = tar_member(image_name, image, now) + tar_member(labels_name, labels, now)
            await response.write(chunk)
            written += len(chunk)
            manifest.append(json.dumps({"job_id": item.job.id, "image": image_name, "labels": labels_name}))
        if len(items) < EXPORT_PAGE:
            break
        cursor = f"{items[-1].updated_at}|{items[-1].job.id}"
    index = tar_member("manifest.jsonl", "".join(line + "\n" for line in manifest).encode(), now)
    await response.write(index + tar_end(written + len(index)))
    await response.write_eof()
    _LOGGER.info("exported %d corrected images for shop %s", len(manifest), principal.shop_id)
    return response
