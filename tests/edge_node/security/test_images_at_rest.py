"""Images at rest: ciphertext on disk (GCM tag bound to the job id), no metadata stored or served, every read
audited, key rotation with lazy re-encryption, the periodic retention purge, and `store_images: false`."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image, ImageCms

from edge_node import keys
from edge_node.errors import ServiceUnavailableError
from edge_node.store.audit import ImageAccess
from edge_node.store.db import connect
from edge_node.store.images import ImageVault, key_id_of
from tests.edge_node.security.helpers import SecureClient, admin, bearer, encode, run_db, upload, wait_final
from tests.support import render_lines

MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*")
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>owner: secret</rdf:RDF></x:xmpmeta>'


def _phone_photo(text: str) -> tuple[bytes, tuple[int, int]]:
    """A JPEG stored sideways with EXIF orientation 6 (as phones write them), GPS, make, ICC, XMP and a comment."""
    upright = render_lines([text])
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (23.0, 48.0, 12.0)}
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(upright.rotate(90, expand=True), "JPEG", quality=92, exif=exif.tobytes(), icc_profile=icc,
                  xmp=XMP, comment=b"shop secret")
    return data, upright.size


def _assert_no_metadata(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert len(image.getexif()) == 0
    assert not {"exif", "icc_profile", "xmp", "comment", "XML:com.adobe.xmp"} & set(image.info)
    for marker in (b"Exif\x00", b"PhoneMaker", b"owner: secret", b"shop secret", b"ICC_PROFILE"):
        assert marker not in data
    return image


async def _ocr(client: TestClient[Any, Any], image: bytes) -> dict[str, Any]:
    response = await client.post("/api/v1/ocr/process/async", data=upload(image), headers=bearer())
    assert response.status == 202, await response.text()
    job = await wait_final(client, (await response.json())["data"]["job_id"], bearer())
    assert job["status"] == "completed", job
    return job


def _data_dir(client: TestClient[Any, Any]) -> Path:
    return Path(client.app[keys.CONFIG].storage.data_dir)


async def test_stored_file_is_ciphertext_and_served_image_has_no_metadata(secure_client: SecureClient) -> None:
    client = await secure_client()
    photo, upright_size = _phone_photo("GREEN TEA 120")
    job = await _ocr(client, photo)
    job_id = job["job_id"]
    assert "TEA" in job["result"]["text"]  # turned upright before OCR
    blob = (_data_dir(client) / "images" / f"{job_id}.bin").read_bytes()
    assert not blob.startswith(MAGIC) and not any(magic in blob for magic in (b"JFIF", b"Exif", b"\xff\xd8\xff"))
    key = (_data_dir(client) / "keys" / "images.key").read_bytes()
    plain = AESGCM(key).decrypt(blob[:12], blob[12:], job_id.encode())  # the GCM tag verifies
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(tampered[:12], tampered[12:], job_id.encode())
    with pytest.raises(InvalidTag):  # bound to its job: the same blob under another id does not open
        AESGCM(key).decrypt(blob[:12], blob[12:], b"another-job")
    assert _assert_no_metadata(plain).size == upright_size  # orientation applied, then the tag dropped

    served = await client.get(f"/api/v1/ocr/jobs/{job_id}/image?reason=refund%20dispute%20%2342", headers=admin())
    assert served.status == 200 and served.content_type == "image/jpeg"
    assert served.headers["Cache-Control"] == "no-store"
    body = await served.read()
    assert body == plain
    _assert_no_metadata(body)
    rows = await run_db(client, "SELECT * FROM image_audit_log")
    assert [(r["job_id"], r["user_id"], r["role"], r["shop_id"], r["action"], r["reason"]) for r in rows] == [
        (job_id, "admin-1", "admin", "shop-a", "read", "refund dispute #42")]
    assert rows[0]["at"]
    assert (await client.get(f"/api/v1/ocr/jobs/{job_id}/image", headers=bearer())).status == 403
    assert len(await run_db(client, "SELECT * FROM image_audit_log")) == 1


async def test_upload_without_metadata_is_stored_byte_for_byte(secure_client: SecureClient) -> None:
    client = await secure_client()
    clean = encode(render_lines(["SOAP 45"]), "PNG")
    job_id = (await _ocr(client, clean))["job_id"]
    served = await client.get(f"/api/v1/ocr/jobs/{job_id}/image", headers=admin())
    assert served.content_type == "image/png" and await served.read() == clean
    assert [r["reason"] for r in await run_db(client, "SELECT reason FROM image_audit_log")] == ["admin review"]


def test_rotation_reads_old_blobs_and_re_encrypts_them(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    old_key, new_key = b"o" * 32, b"n" * 32
    access = ImageAccess("admin-1", "admin", "shop-a", "test")
    ImageVault(tmp_path / "images", old_key, 90).put(conn, "job-1", b"picture")
    conn.execute("INSERT INTO ocr_processing_jobs (id, shop_id, user_id, document_type, options, status,"
                 " created_at, updated_at) VALUES ('job-1', 's', 'u', 'product', '{}', 'completed', '', '')")
    without_old = ImageVault(tmp_path / "images", new_key, 90)
    with pytest.raises(ServiceUnavailableError, match="image_old_key_files"):
        without_old.read(conn, "job-1", access)
    rotated = ImageVault(tmp_path / "images", new_key, 90, old_keys=[old_key])
    assert rotated.read(conn, "job-1", access) == b"picture"
    assert conn.execute("SELECT key_id FROM images").fetchone()[0] == key_id_of(new_key)
    blob = (tmp_path / "images" / "job-1.bin").read_bytes()
    assert AESGCM(new_key).decrypt(blob[:12], blob[12:], b"job-1") == b"picture"
    assert without_old.read(conn, "job-1", access) == b"picture"  # the old key is no longer needed
    assert rotated.purge_expired(conn) == 0 and (tmp_path / "images" / "job-1.bin").exists()


async def test_rotation_through_the_config(secure_client: SecureClient, tmp_path: Path) -> None:
    first = await secure_client()
    job_id = (await _ocr(first, encode(render_lines(["RICE 80"]), "PNG")))["job_id"]
    old_key_file = _data_dir(first) / "keys" / "images.key"
    await first.close()
    new_key_file = tmp_path / "images-2025.key"
    new_key_file.write_bytes(b"N" * 32)
    second = await secure_client(storage={"image_key_file": new_key_file, "image_old_key_files": [old_key_file]})
    served = await second.get(f"/api/v1/ocr/jobs/{job_id}/image", headers=admin())
    assert served.status == 200
    [row] = await run_db(second, "SELECT key_id FROM images WHERE job_id = ?", job_id)
    assert row["key_id"] == key_id_of(b"N" * 32)


async def test_periodic_purge_deletes_exactly_the_expired(secure_client: SecureClient) -> None:
    client = await secure_client(storage={"purge_interval_seconds": 0.05})
    expired = (await _ocr(client, encode(render_lines(["OLD 1"]), "PNG")))["job_id"]
    kept = (await _ocr(client, encode(render_lines(["NEW 2"]), "PNG")))["job_id"]
    await run_db(client, "UPDATE images SET expires_at = 0 WHERE job_id = ?", expired)
    folder = _data_dir(client) / "images"
    for _ in range(100):
        if not (folder / f"{expired}.bin").exists():
            break
        await asyncio.sleep(0.05)
    assert sorted(p.name for p in folder.iterdir()) == [f"{kept}.bin"]
    assert [r["job_id"] for r in await run_db(client, "SELECT job_id FROM images")] == [kept]
    assert (await client.get(f"/api/v1/ocr/jobs/{expired}/image", headers=admin())).status == 404
    assert (await client.get(f"/api/v1/ocr/jobs/{expired}", headers=bearer())).status == 200  # the job stays


async def test_store_images_false_writes_no_image(secure_client: SecureClient) -> None:
    client = await secure_client(storage={"store_images": False})
    job_id = (await _ocr(client, _phone_photo("MILK 60")[0]))["job_id"]
    assert list((_data_dir(client) / "images").iterdir()) == []
    assert await run_db(client, "SELECT * FROM images") == []
    response = await client.get(f"/api/v1/ocr/jobs/{job_id}/image", headers=admin())
    assert response.status == 404
    assert await run_db(client, "SELECT * FROM image_audit_log") == []
