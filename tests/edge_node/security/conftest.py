"""Security fixtures: the real app (real engines, real SQLite) with config overrides per test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from edge_node.app import create_app
from edge_node.config import EdgeConfig
from edge_node.engines.registry import EngineSet
from tests.edge_node.security.helpers import SecureClient, with_sections


@pytest.fixture
def secure_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], edge_config: EdgeConfig, engines: EngineSet
) -> SecureClient:
    """`await secure_client(rate_limit={...}, server={...})`: a test client of a node with those settings."""

    async def factory(**sections: dict[str, Any]) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(with_sections(edge_config, **sections), engines))

    return factory
