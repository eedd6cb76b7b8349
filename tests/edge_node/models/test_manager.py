"""The model manager with the real tiny TrOCR bundle, the real engines and SQLite, and a small HTTP server in
central's place (the real central is in tests/integration/test_model_rollout.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from bundle_variants import Tars, announcement, rollout
from support import encode, render_lines, rgb
from tiny_trocr import TinyBundle

from edge_node.config import EdgeConfig, load_config
from edge_node.engines.registry import EngineSet
from edge_node.errors import ModelError
from edge_node.models.manager import ModelManager
from edge_node.models.probation import WatchedRecognizer
from edge_node.pipeline.runner import run_image
from edge_node.store.db import Database
from shared_models.model_updates import MODEL_UPDATE_FAILED, SHADOW_AGREEMENT_METRIC, NodeErrorLog, bundle_path
from shared_models.ocr import OcrOptions

NAME = "tiny-trocr"


class FakeCentral:
    """Serves tars at central's bundle paths and counts the requests."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}
        self.hits: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def publish(self, version: str, tar: Path) -> None:
        self.files[bundle_path(NAME, version)] = tar

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        path = self.files.get(request.path)
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def central() -> AsyncIterator[FakeCentral]:
    server = FakeCentral()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def node_engines(engines: EngineSet) -> EngineSet:
    """The session's loaded engines behind a routing of this test's own (swaps must not leak between tests)."""
    return EngineSet(engines.detector, engines.recognizers, engines.primary, engines.fallback)


def make_config(tmp_path: Path, tiny: TinyBundle, central_url: str, **env: str) -> EdgeConfig:
    return load_config(environ={
        "EDGE_STORAGE__DATA_DIR": str(tmp_path / "data"), "EDGE_JWT_SECRET": "x" * 40, "EDGE_SHOP_ID": "shop-a",
        "EDGE_NODE__NODE_ID": "node-1", "EDGE_SYNC__ENABLED": "true", "EDGE_MODELS__UPDATES": "true",
        "EDGE_MODELS__CENTRAL_URL": central_url, "EDGE_OCR__TRUSTED_KEYS": str(tiny.public_key),
        "EDGE_MODELS__DOWNLOAD_ATTEMPTS": "2", **env,
    })


@pytest.fixture
async def node(tmp_path: Path, tiny: TinyBundle, central: FakeCentral,
               node_engines: EngineSet) -> AsyncIterator[tuple[ModelManager, Database, EdgeConfig]]:
    config = make_config(tmp_path, tiny, central.url, EDGE_MODELS__PROBATION_JOBS="3")
    db = Database(config.storage.database_path)
    manager = ModelManager(config, db, node_engines)
    await manager.start()
    yield manager, db, config
    await manager.stop()
    db.close()


def read(engines: EngineSet, text: str) -> tuple[str, str]:
    result = run_image(encode(render_lines([text])), OcrOptions(extract_barcodes=False), engines)
    return result.text, result.model_used


def error_logs(db: Database) -> list[tuple[str | None, str, str]]:
    rows = db.run_sync(lambda conn: conn.execute(
        "SELECT job_id, error_code, error_message FROM ocr_error_logs ORDER BY id").fetchall())
    return [tuple(row) for row in rows]


def outbox(db: Database, kind: str) -> list[dict]:
    rows = db.run_sync(lambda conn: conn.execute(
        "SELECT payload FROM outbox WHERE kind = ? ORDER BY seq", (kind,)).fetchall())
    return [json.loads(row[0]) for row in rows]


async def test_an_announced_bundle_is_installed_and_reads(node, central: FakeCentral, tars: Tars,
                                                          node_engines: EngineSet) -> None:
    manager, _db, _config = node
    assert node_engines.primary["en"] == "ppocr"
    central.publish("1.0.0", tars.v1)
    await manager.apply(announcement(1, rollout(tars.v1, NAME, "1.0.0", 1)))
    assert manager.serving is not None and manager.serving.label == f"{NAME}@1.0.0"
    assert manager.serving.state == "probation"
    assert node_engines.primary["en"] == "trocr" and node_engines.primary["bn"] == "tesseract"
    assert isinstance(node_engines.primary_for("en"), WatchedRecognizer)
    for text in ("MILK 45", "TOTAL 120"):
        assert read(node_engines, text) == (text, "trocr")
    health = manager.health()
    assert health["serving"] == {"en": f"trocr:{NAME}@1.0.0", "bn": "tesseract"}
    assert health["last_update"]["state"] == "installed" and health["revision"] == 1
    assert manager.model_versions() == {"en": "trocr", "bn": "tesseract", "trocr": f"{NAME}@1.0.0"}
    assert not (manager._dir / "downloads" / f"{rollout(tars.v1, NAME, '1.0.0', 1).bundle.sha256}.tar").exists()


async def test_a_bundle_signed_by_an_unknown_key_is_refused_and_reported(node, central: FakeCentral,
                                                                         tars: Tars, node_engines: EngineSet) -> None:
    manager, db, _config = node
    central.publish("1.0.0", tars.v1)
    central.publish("3.0.0", tars.wrong_key)
    good = rollout(tars.v1, NAME, "1.0.0", 1)
    await manager.apply(announcement(1, good))
    bad = rollout(tars.wrong_key, NAME, "3.0.0", 2)
    await manager.apply(announcement(2, bad, good))
    assert manager.serving is not None and manager.serving.version == "1.0.0", "keeps serving what it had"
    assert read(node_engines, "RICE 5KG") == ("RICE 5KG", "trocr")
    last = manager.health()["last_update"]
    assert last["state"] == "failed" and last["stage"] == "verify" and "not one of the 1 trusted keys" in last["reason"]
    assert manager.health()["refused"] == [f"{NAME}@3.0.0"]
    logs = error_logs(db)
    assert logs[-1][0] is None and logs[-1][1] == MODEL_UPDATE_FAILED and "verify" in logs[-1][2]
    synced = NodeErrorLog.model_validate(outbox(db, "errors")[-1])
    assert synced.model == f"{NAME}@3.0.0" and synced.code == MODEL_UPDATE_FAILED
    hits = len(central.hits)
    await manager.apply(announcement(3, bad, good))
    assert len(central.hits) == hits, "a refused bundle is not downloaded again"
    assert not (manager._dir / NAME / "3.0.0").exists()


async def test_a_failing_self_test_keeps_the_serving_model(node, central: FakeCentral, tars: Tars,
                                                          node_engines: EngineSet) -> None:
    manager, _db, _config = node
    central.publish("1.0.0", tars.v1)
    central.publish("4.0.0", tars.bad_self_test)
    await manager.apply(announcement(1, rollout(tars.v1, NAME, "1.0.0", 1)))
    await manager.apply(announcement(2, rollout(tars.bad_self_test, NAME, "4.0.0", 2)))
    assert manager.serving is not None and manager.serving.version == "1.0.0"
    last = manager.health()["last_update"]
    assert last["stage"] == "self-test" and "failed its self-test" in last["reason"]
    assert read(node_engines, "TEA 30.50") == ("TEA 30.50", "trocr")


async def test_bytes_changed_in_transit_and_no_link_keep_the_model_and_retry(node, central: FakeCentral,
                                                                             tars: Tars, tmp_path: Path) -> None:
    manager, _db, _config = node
    announced = rollout(tars.v2, NAME, "2.0.0", 1)
    tampered = tmp_path / "tampered.tar"
    data = bytearray(tars.v2.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    central.publish("2.0.0", tampered)
    await manager.apply(announcement(1, announced))
    assert manager.serving is None
    last = manager.health()["last_update"]
    assert last["stage"] == "download" and "does not match the announced sha256" in last["reason"]
    assert not last["permanent"] and manager._retry_due and manager.revision == -1
    await central.stop()  # no link to central any more
    await manager.apply(announcement(1, announced))
    assert "cannot download" in manager.health()["last_update"]["reason"]
    assert manager.serving is None and manager.health()["serving"]["en"] == "ppocr"


async def test_the_installed_model_comes_back_after_a_restart(node, central: FakeCentral, tars: Tars,
                                                             node_engines: EngineSet, tmp_path: Path,
                                                             tiny: TinyBundle, engines: EngineSet) -> None:
    manager, db, config = node
    central.publish("1.0.0", tars.v1)
    await manager.apply(announcement(5, rollout(tars.v1, NAME, "1.0.0", 1)))
    await manager.stop()
    fresh = EngineSet(engines.detector, engines.recognizers, engines.primary, engines.fallback)
    again = ModelManager(config, db, fresh)
    await again.start()
    try:
        assert again.serving is not None and again.serving.version == "1.0.0" and again.revision == 5
        assert read(fresh, "EGGS 12") == ("EGGS 12", "trocr")
        again.receive("t", announcement(5, rollout(tars.v1, NAME, "1.0.0", 1)).model_dump_json().encode())
        assert again._latest is None, "an announcement already applied is ignored"
    finally:
        await again.stop()


async def test_a_rollout_to_nothing_restores_the_embedded_default(node, central: FakeCentral, tars: Tars,
                                                                 node_engines: EngineSet) -> None:
    manager, _db, _config = node
    central.publish("1.0.0", tars.v1)
    await manager.apply(announcement(1, rollout(tars.v1, NAME, "1.0.0", 1)))
    await manager.apply(announcement(2))
    assert manager.serving is None and node_engines.primary["en"] == "ppocr"
    assert node_engines.routing is node_engines.default_routing
    assert manager.health()["last_update"]["state"] == "restored-default"
    assert not (manager._dir / NAME / "1.0.0").exists(), "the retired bundle is deleted"


async def test_a_rollout_for_other_shops_leaves_the_node_alone(node, central: FakeCentral, tars: Tars,
                                                              node_engines: EngineSet) -> None:
    from shared_models.model_updates import RolloutTarget

    manager, _db, _config = node
    central.publish("1.0.0", tars.v1)
    other = rollout(tars.v1, NAME, "1.0.0", 1, target=RolloutTarget(kind="shops", shops=("shop-b",)))
    await manager.apply(announcement(1, other))
    assert manager.serving is None and central.hits == []


async def test_errors_on_probation_roll_back_to_the_previous_model(node, central: FakeCentral, tars: Tars,
                                                                  node_engines: EngineSet) -> None:
    manager, _db, _config = node
    central.publish("1.0.0", tars.v1)
    central.publish("2.0.0", tars.v2)
    v1 = rollout(tars.v1, NAME, "1.0.0", 1)
    await manager.apply(announcement(1, v1))
    v2 = rollout(tars.v2, NAME, "2.0.0", 2)
    await manager.apply(announcement(2, v2, v1))
    assert manager.serving is not None and manager.serving.version == "2.0.0"
    watched = node_engines.primary_for("en")
    assert isinstance(watched, WatchedRecognizer)

    def broken(crops: list, language: str) -> list:
        raise ModelError("onnxruntime: invalid output shape")

    watched.inner.recognize = broken  # type: ignore[method-assign]
    crop = rgb(render_lines(["MILK 45"]))
    for _ in range(3):
        with pytest.raises(ModelError):
            watched.recognize([crop], "en")
    for _ in range(100):
        await asyncio.sleep(0.05)
        if manager.serving is not None and manager.serving.version == "1.0.0":
            break
    assert manager.serving is not None and manager.serving.version == "1.0.0"
    assert manager.serving.state == "confirmed"
    assert read(node_engines, "MILK 45") == ("MILK 45", "trocr")
    health = manager.health()
    assert f"{NAME}@2.0.0" in health["refused"]
    assert any("rolled back" in log[2] and "invalid output shape" in log[2] for log in error_logs(_db))


async def test_a_model_that_passes_probation_is_confirmed(node, central: FakeCentral, tars: Tars,
                                                         node_engines: EngineSet) -> None:
    manager, _db, _config = node
    central.publish("1.0.0", tars.v1)
    await manager.apply(announcement(1, rollout(tars.v1, NAME, "1.0.0", 1)))
    for text in ("MILK 45", "TOTAL 120", "RICE 5KG"):
        read(node_engines, text)
    await asyncio.sleep(0.05)
    assert manager.serving is not None and manager.serving.state == "confirmed"


async def test_a_shadow_model_reads_beside_the_serving_one_and_reports_agreement(
        node, central: FakeCentral, tars: Tars, node_engines: EngineSet) -> None:
    manager, db, _config = node
    central.publish("2.0.0", tars.v2)
    await manager.apply(announcement(1, rollout(tars.v2, NAME, "2.0.0", 1, shadow=True, sample=1.0)))
    assert manager.serving is None and manager.shadow is not None
    for text in ("MILK 45", "TOTAL 120", "EGGS 12"):
        served = read(node_engines, text)
        assert served[1] == "ppocr", "the shadow never serves"
        for _ in range(100):  # let the background comparison finish before the next sample (else it is skipped)
            engine = manager._shadow_engine
            if engine is not None and not engine._busy:
                break
            await asyncio.sleep(0.02)
    health = manager.health()
    assert health["shadow"]["model"] == f"{NAME}@2.0.0" and health["shadow"]["lines"] == 3
    assert health["serving"]["shadow"] == f"trocr:{NAME}@2.0.0"
    assert manager.model_versions() == {"en": "ppocr", "bn": "tesseract", "trocr-shadow": f"{NAME}@2.0.0"}
    await manager.report_shadow()
    points = outbox(db, "metrics")[-1]["metrics"]
    agreement = next(p for p in points if p["metric_name"] == SHADOW_AGREEMENT_METRIC)
    assert agreement["model_name"] == f"{NAME}@2.0.0" and 0.0 <= agreement["value"] <= 1.0
    assert agreement["value"] == health["shadow"]["agreement"]
    await manager.apply(announcement(2))
    assert manager.shadow is None and node_engines.routing is node_engines.default_routing


async def test_requests_running_across_swaps_never_fail(node, central: FakeCentral, tars: Tars,
                                                       node_engines: EngineSet) -> None:
    """Readers keep reading on other threads while the model is swapped in, replaced and retired: every read
    succeeds and reads its text (with whichever model it met)."""
    import threading

    manager, _db, _config = node
    central.publish("1.0.0", tars.v1)
    central.publish("2.0.0", tars.v2)
    stop = threading.Event()
    outcomes: list[tuple[str, str] | BaseException] = []

    def reader(text: str) -> None:
        while not stop.is_set():
            try:
                outcomes.append(read(node_engines, text))
            except BaseException as err:  # noqa: BLE001 - any failure is the finding
                outcomes.append(err)

    threads = [threading.Thread(target=reader, args=(text,)) for text in ("MILK 45", "TOTAL 120")]
    for thread in threads:
        thread.start()
    try:
        v1 = rollout(tars.v1, NAME, "1.0.0", 1)
        await manager.apply(announcement(1, v1))
        await asyncio.sleep(0.3)
        await manager.apply(announcement(2, rollout(tars.v2, NAME, "2.0.0", 2), v1))
        await asyncio.sleep(0.3)
        await manager.apply(announcement(3))
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            await asyncio.to_thread(thread.join)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert not failures, failures[:3]
    reads = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(reads) >= 6 and all(text in ("MILK 45", "TOTAL 120") for text, _ in reads)
    assert {engine for _, engine in reads} >= {"trocr"}, "some reads met the rolled-out model"


async def test_a_rebuilt_registry_is_followed_although_it_counts_from_one(node, central: FakeCentral, tars: Tars,
                                                                          node_engines: EngineSet) -> None:
    manager, _db, _config = node
    central.publish("1.0.0", tars.v1)
    old, new = "20261101T080000-00000000000000aa", "20261130T090000-00000000000000bb"
    first = announcement(9, rollout(tars.v1, NAME, "1.0.0", 1)).model_copy(update={"epoch": old})
    await manager.apply(first)
    assert (manager.registry_epoch, manager.revision) == (old, 9)
    rebuilt = announcement(1).model_copy(update={"epoch": new})  # central's database was rebuilt: nothing active
    manager.receive("t", rebuilt.model_dump_json().encode())
    assert manager._latest == rebuilt, "revision 1 of a later registry is taken"
    await manager.apply(rebuilt)
    assert manager.serving is None and (manager.registry_epoch, manager.revision) == (new, 1)
    manager._latest = None
    manager.receive("t", first.model_dump_json().encode())
    assert manager._latest is None, "the old registry's announcement is not taken back"
