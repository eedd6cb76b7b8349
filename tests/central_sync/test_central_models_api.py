"""The registry over the serving central's HTTP API and MQTT link (real PostgreSQL and Mosquitto): bundle downloads
with a token (whole, Range, If-Range by date, HEAD; 401 and 404 envelopes), GET /api/v1/models, the dashboard's rollouts
view per shop, and the retained announcement the serving replica publishes again when it connects."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.app import create_app
from central_sync.config import CentralConfig
from central_sync.db.engine import create_engine
from central_sync.registry import Registry
from shared_models.model_updates import RolloutTarget, bundle_path
from shared_models.topics import MODELS_ANNOUNCE
from tests.central_sync.announcements import Listener
from tests.central_sync.bundles import make_bundle
from tests.central_sync.harness import eventually, query
from tests.services import Mosquitto

pytestmark = pytest.mark.integration

SECRET = "models-api-test-secret-long-enough-for-hs256"
TAR = bundle_path("demo-trocr", "1.0.0")


def auth(shop_id: str | None = None, secret: str = SECRET, ttl: int = 600) -> dict[str, str]:
    claims: dict[str, Any] = {"sub": "node-a", "exp": int(time.time()) + ttl}
    claims.update({"shop_id": shop_id} if shop_id else {"role": "operator"})
    return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}


async def _ignore(data: bytes, topics: list[str]) -> None:
    """A publisher that drops the announcement: the broker never hears of the change (a lost retained store)."""


@pytest.fixture
async def seeded(make_config: Callable[..., CentralConfig], db_url: str, tmp_path: Path) -> AsyncIterator[
        tuple[CentralConfig, Path]]:
    """A config whose registry holds demo-trocr 1.0.0 (rolled out to all) and 2.0.0 (to shop-2 only)."""
    config = make_config()
    config.kafka.enabled = False
    config.dashboard.jwt_secret = SECRET
    engine = create_engine(config.database)
    try:
        registry = Registry(config, engine, publisher=_ignore)
        key = Ed25519PrivateKey.generate()
        first = await registry.upload(make_bundle(tmp_path / "v1", key))
        await registry.upload(make_bundle(tmp_path / "v2", key, version="2.0.0"))
        await registry.rollout("demo-trocr", "1.0.0", RolloutTarget(kind="all"))
        await registry.rollout("demo-trocr", "2.0.0", RolloutTarget(kind="shops", shops=("shop-2",)))
        await query(db_url, """INSERT INTO nodes (node_id, shop_id, model_versions)
                               VALUES ('node-a', 'shop-1', '{"trocr": "demo-trocr@1.0.0"}')""")
        yield config, registry.archive_path(first.bundle)
    finally:
        await engine.dispose()


async def _client(config: CentralConfig, aiohttp_client: Any) -> Any:
    client = await aiohttp_client(create_app(config))

    async def connected() -> bool:
        return (await (await client.get("/api/v1/health")).json())["data"]["mqtt"]["connected"]

    await eventually(connected, what="central connected to the broker")
    return client


async def test_the_serving_central_re_announces_the_state_when_it_connects(
    seeded: tuple[CentralConfig, Path], broker: Mosquitto, aiohttp_client: Any
) -> None:
    config, _tar = seeded
    client = await _client(config, aiohttp_client)

    async def reported() -> bool:
        body = await (await client.get("/api/v1/health")).json()
        return body["data"]["models"] == {"announced_revision": 2, "last_error": None}

    await eventually(reported, what="health reports the re-announced revision")
    listener = Listener(broker.url, [MODELS_ANNOUNCE], "fresh-node")  # subscribes after: gets the retained copy
    try:
        heard = await listener.revision(2)
    finally:
        listener.close()
    assert heard.retain
    assert [(r.version, r.target.kind) for r in heard.announcement.rollouts] == [("2.0.0", "shops"), ("1.0.0", "all")]

    # The broker comes back with an empty store (a new volume): the replica's reconnection heals it.
    broker.stop()
    shutil.rmtree(broker.workdir / "data")
    broker.start()
    listener = Listener(broker.url, [MODELS_ANNOUNCE], "node-after-restore")
    try:
        healed = await listener.revision(2)
    finally:
        listener.close()
    assert healed.announcement == heard.announcement, "the same revision, time and content: nodes ignore it"
    later = Listener(broker.url, [MODELS_ANNOUNCE], "node-later")
    try:
        assert (await later.revision(2)).retain
    finally:
        later.close()


async def test_bundle_downloads_need_a_token_and_support_ranges(
    seeded: tuple[CentralConfig, Path], aiohttp_client: Any
) -> None:
    config, tar = seeded
    client = await _client(config, aiohttp_client)
    data = tar.read_bytes()
    headers = auth("shop-1")  # a shop token may download: bundles are signed, not secret

    whole = await client.get(TAR, headers=headers)
    assert whole.status == 200 and await whole.read() == data
    assert whole.headers["X-Bundle-SHA256"] == hashlib.sha256(data).hexdigest()
    assert whole.headers["Accept-Ranges"] == "bytes" and whole.headers["Content-Type"] == "application/x-tar"

    part = await client.get(TAR, headers={**headers, "Range": "bytes=100-1099"})
    assert part.status == 206 and await part.read() == data[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    rest = await client.get(TAR, headers={**headers, "Range": "bytes=1100-"})
    assert rest.status == 206 and await rest.read() == data[1100:]
    # If-Range (aiohttp compares dates, not ETags): unchanged since Last-Modified resumes, an older date restarts.
    same = await client.get(TAR, headers={**headers, "Range": "bytes=0-9", "If-Range": whole.headers["Last-Modified"]})
    assert same.status == 206 and await same.read() == data[:10]
    older = "Mon, 01 Jan 2001 00:00:00 GMT"
    changed = await client.get(TAR, headers={**headers, "Range": "bytes=0-9", "If-Range": older})
    assert changed.status == 200 and await changed.read() == data
    head = await client.head(TAR, headers=headers)
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(data)

    for missing in ({}, {"Authorization": "Bearer not-a-token"}, auth(secret="another-secret-long-enough-for-hs256"),
                    auth(ttl=-3600)):
        refused = await client.get(TAR, headers=missing)
        body = await refused.json()
        assert refused.status == 401 and body["success"] is False and body["error"]["code"] == "UNAUTHORIZED"
    for unknown in (bundle_path("demo-trocr", "9.9.9"), bundle_path("absent", "1.0.0"),
                    "/api/v1/models/.hidden/1.0.0/bundle.tar"):
        response = await client.get(unknown, headers=headers)
        body = await response.json()
        assert response.status == 404 and body["error"]["code"] == "NOT_FOUND", unknown


async def test_models_list_and_the_dashboard_rollouts_are_scoped_by_shop(
    seeded: tuple[CentralConfig, Path], aiohttp_client: Any
) -> None:
    config, tar = seeded
    client = await _client(config, aiohttp_client)
    operator = await (await client.get("/api/v1/models", headers=auth())).json()
    assert operator["success"] and operator["data"]["revision"] == 2
    assert [b["version"] for b in operator["data"]["bundles"]] == ["1.0.0", "2.0.0"]
    assert operator["data"]["bundles"][0]["size"] == tar.stat().st_size
    assert [r["version"] for r in operator["data"]["rollouts"]] == ["2.0.0", "1.0.0"]
    shop1 = await (await client.get("/api/v1/models", headers=auth("shop-1"))).json()
    assert [r["version"] for r in shop1["data"]["rollouts"]] == ["1.0.0"] and shop1["data"]["shops"] == ["shop-1"]
    forbidden = await client.get("/api/v1/models", params={"shop_id": "shop-2"}, headers=auth("shop-1"))
    assert forbidden.status == 403
    assert (await client.get("/api/v1/models")).status == 401

    view = await (await client.get("/api/v1/dashboard/rollouts", headers=auth())).json()
    rollouts = view["data"]["rollouts"]
    assert rollouts["registry"] and rollouts["summary"] == "2 active (revision 2)"
    assert [(r["label"], r["target_text"], r["nodes_reporting"]) for r in rollouts["active"]] == [
        ("demo-trocr@2.0.0", "shops shop-2", 0), ("demo-trocr@1.0.0", "all", 1)]
    mine = await (await client.get("/api/v1/dashboard/rollouts", headers=auth("shop-1"))).json()
    assert [r["label"] for r in mine["data"]["rollouts"]["active"]] == ["demo-trocr@1.0.0"]
