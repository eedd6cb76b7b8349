"""Browser-test fixtures: Debian's headless Chromium driven over the DevTools protocol, real servers on loopback
ports, screenshots under .test-artifacts/browser/. A missing Chromium FAILS under CI=true and skips elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.browser.cdp import Browser, find_chromium
from tests.services import Mosquitto, PostgresServer, require

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "browser"


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """A headless Chromium with its own profile, stopped after the test."""
    binary = find_chromium()
    if binary is None:
        require("chromium is not installed (apt-get install chromium)")
    instance = await Browser(binary, tmp_path / "chromium-profile").start()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture(scope="session")
def pg_server() -> PostgresServer:
    """The machine's PostgreSQL (fails under CI=true, skips elsewhere, when missing)."""
    return PostgresServer()


@pytest.fixture
def central_db(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database for this test, migrated to head, dropped afterwards."""
    from central_sync.db.migrate import upgrade

    url = pg_server.create_database("dashboard_browser")
    try:
        asyncio.run(upgrade(url))
        yield url
    finally:
        pg_server.drop_database(url)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """Our own Mosquitto for this test."""
    instance = Mosquitto(tmp_path / "mosquitto").start()
    yield instance
    instance.stop()
