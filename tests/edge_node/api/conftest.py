"""API fixtures: the real app (real engines, real SQLite) behind aiohttp's test client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from edge_node.app import create_app
from edge_node.auth import issue_token
from edge_node.config import EdgeConfig
from edge_node.engines.registry import EngineSet

SECRET = "test-secret-that-is-long-enough-for-hs256"

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def token_for(shop_id: str = "shop-a", user_id: str = "clerk-1", ttl: int = 600, role: str = "clerk") -> str:
    return issue_token(SECRET, user_id=user_id, shop_id=shop_id, ttl_seconds=ttl, role=role)


def auth(shop_id: str = "shop-a", user_id: str = "clerk-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(shop_id, user_id)}"}


def admin_auth(shop_id: str = "shop-a", user_id: str = "admin-1") -> dict[str, str]:
    """Headers of an admin of the shop (metrics, retry, delete, stored images)."""
    return {"Authorization": f"Bearer {token_for(shop_id, user_id, role='admin')}"}


def form(image: bytes | None, filename: str = "photo.png", field: str = "image", **fields: str) -> FormData:
    data = FormData()
    if image is not None:
        data.add_field(field, image, filename=filename, content_type="application/octet-stream")
    for name, value in fields.items():
        data.add_field(name, value)
    return data


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], edge_config: EdgeConfig, engines: EngineSet
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    async def factory(config: EdgeConfig | None = None, engine_set: EngineSet | None = None) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(config or edge_config, engine_set or engines))

    return factory
