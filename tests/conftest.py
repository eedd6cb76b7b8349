"""Shared fixtures: the engines are loaded once per test session (as a node loads them once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_node.config import EdgeConfig, load_config
from edge_node.engines.registry import EngineSet, build_engines


@pytest.fixture(scope="session")
def engines() -> EngineSet:
    """The default engines (PP-OCRv6 + Tesseract), really loaded."""
    return build_engines(EdgeConfig().ocr)


@pytest.fixture
def edge_config(tmp_path: Path) -> EdgeConfig:
    """A node config with its own data dir, a known secret and 2 workers."""
    return load_config(
        environ={
            "EDGE_STORAGE__DATA_DIR": str(tmp_path / "data"),
            "EDGE_JWT_SECRET": "test-secret-that-is-long-enough-for-hs256",
            "EDGE_SHOP_ID": "shop-a",
            "EDGE_WORKER__WORKERS": "2",
        }
    )
