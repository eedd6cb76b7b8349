"""Helpers of the security tests: tokens, headers, uploads, jobs crafted in SQLite, polling."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image

from edge_node import keys
from edge_node.auth import issue_token
from edge_node.config import EdgeConfig
from edge_node.store.db import utc_now

SECRET = "test-secret-that-is-long-enough-for-hs256"
SHOP = "shop-a"
OTHER_SHOP = "shop-b"

#: The `secure_client` fixture: `await secure_client(section={field: value})` gives a client of such a node.
SecureClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def with_sections(config: EdgeConfig, **sections: dict[str, Any]) -> EdgeConfig:
    """`config` with some fields of some sections replaced (validated again)."""
    tree = config.model_dump()
    for section, fields in sections.items():
        tree[section].update(fields)
    return EdgeConfig.model_validate(tree)


def bearer(shop_id: str = SHOP, user_id: str = "clerk-1", role: str = "clerk") -> dict[str, str]:
    """Authorization header of a user minted with the test secret."""
    token = issue_token(SECRET, user_id=user_id, shop_id=shop_id, ttl_seconds=600, role=role)
    return {"Authorization": f"Bearer {token}"}


def admin(shop_id: str = SHOP, user_id: str = "admin-1") -> dict[str, str]:
    """Authorization header of an admin."""
    return bearer(shop_id, user_id, role="admin")


def upload(image: bytes, **fields: str) -> FormData:
    """A multipart body with one image."""
    data = FormData()
    data.add_field("image", image, filename="photo", content_type="application/octet-stream")
    for name, value in fields.items():
        data.add_field(name, value)
    return data


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """Image -> file bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


async def run_db(client: TestClient[Any, Any], sql: str, *args: object) -> list[sqlite3.Row]:
    """Run one statement on the node's own database thread and return its rows."""
    return await client.app[keys.DATABASE].run(lambda conn: conn.execute(sql, args).fetchall())


async def insert_job(client: TestClient[Any, Any], shop_id: str, status: str = "completed",
                     result: dict[str, Any] | None = None) -> str:
    """A job row written straight into SQLite (how a job of another shop is crafted: the node serves one shop)."""
    job_id = str(uuid.uuid4())
    now = utc_now()
    await run_db(
        client,
        "INSERT INTO ocr_processing_jobs (id, shop_id, user_id, document_type, options, status, result,"
        " lease_expires_at, created_at, updated_at) VALUES (?, ?, 'someone', 'product', '{}', ?, ?, ?, ?, ?)",
        job_id, shop_id, status, json.dumps(result or {"text": "SECRET 9.99"}), 4102444800.0, now, now,
    )
    return job_id


async def wait_final(client: TestClient[Any, Any], job_id: str, headers: dict[str, str],
                     seconds: float = 60) -> dict[str, Any]:
    """Poll a job until it has ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        job = (await (await client.get(f"/api/v1/ocr/jobs/{job_id}", headers=headers)).json())["data"]
        if job["status"] in ("completed", "failed", "dead") or loop.time() > deadline:
            return dict(job)
        await asyncio.sleep(0.05)
