"""Every error code through the API: the envelope, the status, and a job row for each refused request."""

from __future__ import annotations

import struct
import time
import zlib
from typing import Any

import numpy as np
import pytest
from conftest import SECRET, ClientFactory, admin_auth, auth, form, token_for
from support import encode, render_lines

from edge_node.config import EdgeConfig
from edge_node.engines.base import LineReading
from edge_node.engines.registry import EngineSet
from edge_node.errors import ModelError

GOOD = encode(render_lines(["OK 1.00"]))


def _bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) + chunk(
        b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


async def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    body = await response.json()
    assert response.status == status, body
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "UNAUTHORIZED"),
        ({"Authorization": "Bearer nonsense"}, 401, "UNAUTHORIZED"),
        ({"Authorization": f"Bearer {token_for(ttl=-300)}"}, 401, "UNAUTHORIZED"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "UNAUTHORIZED"),
        ({"Authorization": f"Bearer {token_for('shop-b')}"}, 403, "FORBIDDEN"),
    ],
)
async def test_auth_errors(make_client: ClientFactory, headers: dict[str, str], status: int, code: str) -> None:
    client = await make_client()
    await _error(await client.post("/api/v1/ocr/process", data=form(GOOD), headers=headers), status, code)
    await _error(await client.get("/api/v1/metrics", headers=headers), status, code)


def test_forged_signature_is_rejected() -> None:
    assert SECRET not in token_for()  # the secret never travels in the token


@pytest.mark.parametrize(
    ("image", "fields", "status", "code"),
    [
        (b"hello, plain text", {}, 415, "INVALID_IMAGE"),
        (b"PK\x03\x04" + b"\0" * 100, {}, 415, "INVALID_IMAGE"),
        (b"", {}, 400, "INVALID_IMAGE"),
        (GOOD[: len(GOOD) // 2], {}, 400, "INVALID_IMAGE"),
        (_bomb(), {}, 400, "INVALID_IMAGE"),
        (GOOD, {"type": "menu"}, 400, "VALIDATION_ERROR"),
        (GOOD, {"language": "fr"}, 400, "VALIDATION_ERROR"),
        (GOOD, {"confidence_threshold": "1.5"}, 400, "VALIDATION_ERROR"),
        (GOOD, {"confidence_threshold": "abc"}, 400, "VALIDATION_ERROR"),
        (GOOD, {"extract_barcodes": "maybe"}, 400, "VALIDATION_ERROR"),
        (None, {}, 400, "VALIDATION_ERROR"),
        (encode(render_lines([" "]).convert("RGB")), {}, 422, "LOW_QUALITY"),
    ],
)
async def test_bad_input(
    make_client: ClientFactory, image: bytes | None, fields: dict[str, str], status: int, code: str
) -> None:
    client = await make_client()
    await _error(await client.post("/api/v1/ocr/process", data=form(image, **fields), headers=auth()), status, code)
    # The node keeps serving, and the refused request is a failed job row with its code.
    ok = await client.post("/api/v1/ocr/process", data=form(GOOD), headers=auth())
    assert ok.status == 200
    metrics = (await (await client.get("/api/v1/metrics", headers=admin_auth())).json())["data"]
    assert metrics["errors_by_type"] == {code: 1}
    assert metrics["total_requests"] == 2


async def test_not_multipart(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.post("/api/v1/ocr/process", json={"image": "x"}, headers=auth())
    await _error(response, 400, "VALIDATION_ERROR")


async def test_too_large(make_client: ClientFactory, edge_config: EdgeConfig) -> None:
    config = edge_config.model_copy(
        update={"limits": edge_config.limits.model_copy(update={"max_image_size_mb": 0.05})})
    client = await make_client(config)
    big = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    from PIL import Image

    await _error(await client.post("/api/v1/ocr/process", data=form(encode(Image.fromarray(big))), headers=auth()),
                 413, "PAYLOAD_TOO_LARGE")


async def test_too_many_batch_images(make_client: ClientFactory) -> None:
    client = await make_client()
    data = form(GOOD, field="images")
    for _ in range(10):
        data.add_field("images", GOOD, filename="x.png")
    body = await _error(await client.post("/api/v1/ocr/batch", data=data, headers=auth()), 400, "VALIDATION_ERROR")
    assert body["error"]["details"]["max_images"] == 10


async def test_unknown_route_and_method(make_client: ClientFactory) -> None:
    client = await make_client()
    await _error(await client.get("/api/v1/nothing-here", headers=auth()), 404, "NOT_FOUND")
    await _error(await client.get("/api/v1/ocr/process", headers=auth()), 405, "VALIDATION_ERROR")
    await _error(await client.get("/api/v1/ocr/jobs/does-not-exist", headers=auth()), 404, "NOT_FOUND")


class BrokenEngine:
    key = "broken"
    languages = frozenset({"en", "bn"})

    def __init__(self, hang_seconds: float = 0.0) -> None:
        self.hang_seconds = hang_seconds

    def recognize(self, crops: list[np.ndarray], language: str) -> list[LineReading]:
        if self.hang_seconds:
            time.sleep(self.hang_seconds)
        raise ModelError("engine exploded on purpose")


def _broken_set(engines: EngineSet, hang: float = 0.0) -> EngineSet:
    return EngineSet(detector=engines.detector, recognizers={"broken": BrokenEngine(hang)},
                     primary={"en": "broken", "bn": "broken"}, fallback=None)


def _fast_retries(config: EdgeConfig, timeout: float = 30.0) -> EdgeConfig:
    worker = config.worker.model_copy(update={"retry_initial_seconds": 0.01, "retry_max_seconds": 0.02,
                                              "processing_timeout_seconds": timeout})
    return config.model_copy(update={"worker": worker})


async def test_model_error_after_retries(make_client: ClientFactory, edge_config: EdgeConfig,
                                         engines: EngineSet) -> None:
    client = await make_client(_fast_retries(edge_config), _broken_set(engines))
    body = await _error(await client.post("/api/v1/ocr/process", data=form(GOOD), headers=auth()), 500, "MODEL_ERROR")
    job = (await (await client.get(f"/api/v1/ocr/jobs/{body['error']['details']['job_id']}",
                                   headers=auth())).json())["data"]
    assert job["status"] == "dead" and job["attempts"] == 4


async def test_timeout(make_client: ClientFactory, edge_config: EdgeConfig, engines: EngineSet) -> None:
    config = _fast_retries(edge_config, timeout=0.3)
    config = config.model_copy(update={"worker": config.worker.model_copy(update={"max_retries": 0})})
    client = await make_client(config, _broken_set(engines, hang=0.6))
    await _error(await client.post("/api/v1/ocr/process", data=form(GOOD), headers=auth()), 504, "TIMEOUT")
