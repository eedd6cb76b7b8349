"""Queue behaviour through the API: WebSocket events, shop isolation, cache, backpressure, retries, listing."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
from conftest import ClientFactory, admin_auth, auth, form, token_for
from support import encode, render_lines
from test_errors import _broken_set, _fast_retries

from edge_node.config import EdgeConfig
from edge_node.engines.base import LineReading
from edge_node.engines.registry import EngineSet


def _label(text: str) -> bytes:
    return encode(render_lines([text]))


async def _events_until_done(ws: Any, job_ids: set[str], seconds: float = 60) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    finished: set[str] = set()
    deadline = time.monotonic() + seconds
    while finished != job_ids and time.monotonic() < deadline:
        message = await ws.receive_json(timeout=deadline - time.monotonic())
        events.append(message)
        if message["event"] in ("job_completed", "job_failed"):
            finished.add(message["job_id"])
    return events


async def test_websocket_sees_its_jobs_in_order_and_nothing_of_another_shop(
    make_client: ClientFactory, edge_config: EdgeConfig
) -> None:
    client = await make_client()
    ws = await client.ws_connect(f"/api/v1/ocr/ws?token={token_for()}")
    assert (await ws.receive_json())["event"] == "connected"
    # Another shop's client is refused outright (403 on the upgrade).
    other = await client.get(f"/api/v1/ocr/ws?token={token_for('shop-b')}", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert other.status == 403
    job_ids = set()
    for text in ("MILK 1.20", "BREAD 2.50", "EGGS 3.10"):
        response = await client.post("/api/v1/ocr/process/async", data=form(_label(text)), headers=auth())
        job_ids.add((await response.json())["data"]["job_id"])
    events = await _events_until_done(ws, job_ids)
    for job_id in job_ids:
        kinds = [e["event"] for e in events if e.get("job_id") == job_id]
        assert kinds[0] == "job_queued" and kinds[1] == "job_started" and kinds[-1] == "job_completed"
        assert "job_progress" in kinds
        assert set(kinds[2:-1]) == {"job_progress"}
        progress = [e["progress"] for e in events if e.get("job_id") == job_id and e["event"] == "job_progress"]
        assert progress == sorted(progress)
        steps = [e["current_step"] for e in events if e.get("job_id") == job_id and e["event"] == "job_progress"]
        assert steps[0] == "decode" and "recognize" in steps
    completed = [e for e in events if e["event"] == "job_completed"]
    assert all(e["result"]["text"] for e in completed)
    await ws.close()


async def test_websocket_first_message_auth_and_single_job_subscription(make_client: ClientFactory) -> None:
    client = await make_client()
    ws = await client.ws_connect("/api/v1/ocr/ws")
    await ws.send_json({"token": token_for()})
    assert (await ws.receive_json())["event"] == "connected"
    first = (await (await client.post("/api/v1/ocr/process/async", data=form(_label("A 1")),
                                      headers=auth())).json())["data"]["job_id"]
    await ws.send_json({"action": "subscribe", "job_id": "not-yet"})
    assert (await ws.receive_json())["event"] in ("subscribed", "job_queued", "job_started", "job_progress",
                                                   "job_completed")
    bad = await client.ws_connect("/api/v1/ocr/ws")
    await bad.send_json({"token": "forged"})
    assert (await bad.receive_json())["error"]["code"] == "UNAUTHORIZED"
    assert first


async def test_cache_hit_is_a_cached_job_with_the_same_result(make_client: ClientFactory) -> None:
    client = await make_client()
    image = _label("SALT 0.80")
    first = (await (await client.post("/api/v1/ocr/process", data=form(image), headers=auth())).json())["data"]
    started = time.perf_counter()
    second = (await (await client.post("/api/v1/ocr/process", data=form(image), headers=auth())).json())["data"]
    assert second["cached"] is True and first["cached"] is False
    assert second["id"] != first["id"]
    assert second["text"] == first["text"] and second["structured"] == first["structured"]
    assert time.perf_counter() - started < 5  # generous bound; the benchmark measures the real figure
    other_options = (await (await client.post("/api/v1/ocr/process", data=form(image, type="receipt"),
                                              headers=auth())).json())["data"]
    assert other_options["cached"] is False
    metrics = (await (await client.get("/api/v1/metrics", headers=admin_auth())).json())["data"]
    assert metrics["cached_requests"] == 1 and metrics["total_requests"] == 3


async def test_negative_cache_for_undecodable_uploads(make_client: ClientFactory) -> None:
    client = await make_client()
    for _ in range(2):
        response = await client.post("/api/v1/ocr/process", data=form(b"\x89PNG\r\n\x1a\nbroken"), headers=auth())
        assert (await response.json())["error"]["code"] == "INVALID_IMAGE"
    jobs = (await (await client.get("/api/v1/ocr/jobs?status=failed", headers=auth())).json())["data"]
    assert jobs["count"] == 2


class SlowEngine:
    key = "slow"
    languages = frozenset({"en"})

    def recognize(self, crops: list[np.ndarray], language: str) -> list[LineReading]:
        time.sleep(0.4)
        return [LineReading("SLOW", 0.99) for _ in crops]


async def test_backpressure_202_then_429(make_client: ClientFactory, edge_config: EdgeConfig,
                                         engines: EngineSet) -> None:
    worker = edge_config.worker.model_copy(update={"workers": 1, "soft_queue_limit": 2, "hard_queue_limit": 4})
    config = edge_config.model_copy(update={"worker": worker})
    slow = EngineSet(detector=engines.detector, recognizers={"slow": SlowEngine()},
                     primary={"en": "slow", "bn": "slow"}, fallback=None)
    client = await make_client(config, slow)
    images = [_label(f"ITEM {n}") for n in range(10)]
    responses = await asyncio.gather(*(client.post("/api/v1/ocr/process", data=form(i), headers=auth())
                                       for i in images))
    statuses = sorted(r.status for r in responses)
    assert set(statuses) <= {200, 202, 429}
    assert 202 in statuses and 429 in statuses
    for response in responses:
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["error"]["code"] == "QUOTA_EXCEEDED"
    health = (await (await client.get("/api/v1/health")).json())["data"]
    assert health["queue_status"]["pending_jobs"] >= 0


async def test_dead_job_retry_needs_admin_and_requeues(make_client: ClientFactory, edge_config: EdgeConfig,
                                                      engines: EngineSet) -> None:
    client = await make_client(_fast_retries(edge_config), _broken_set(engines))
    body = await (await client.post("/api/v1/ocr/process", data=form(_label("X 1")), headers=auth())).json()
    job_id = body["error"]["details"]["job_id"]
    dead = (await (await client.get("/api/v1/ocr/jobs?status=dead", headers=auth())).json())["data"]
    assert [j["job_id"] for j in dead["jobs"]] == [job_id]
    clerk = await client.post(f"/api/v1/ocr/jobs/{job_id}/retry", headers=auth())
    assert clerk.status == 403
    admin = {"Authorization": f"Bearer {token_for(role='admin')}"}
    other_shop_admin = {"Authorization": f"Bearer {token_for('shop-b', role='admin')}"}
    assert (await client.post(f"/api/v1/ocr/jobs/{job_id}/retry", headers=other_shop_admin)).status == 403
    retried = await client.post(f"/api/v1/ocr/jobs/{job_id}/retry", headers=admin)
    assert retried.status == 202
    assert (await retried.json())["data"]["status"] == "queued"
    for _ in range(100):
        job = (await (await client.get(f"/api/v1/ocr/jobs/{job_id}", headers=auth())).json())["data"]
        if job["status"] == "dead":
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "dead" and job["attempts"] == 4
    again = await client.post(f"/api/v1/ocr/jobs/{job_id}/retry", headers=admin)
    assert again.status == 202
    missing = await client.post("/api/v1/ocr/jobs/nope/retry", headers=admin)
    assert missing.status == 404


async def test_hung_engine_times_out_without_leaking_threads(make_client: ClientFactory, edge_config: EdgeConfig,
                                                            engines: EngineSet) -> None:
    config = _fast_retries(edge_config, timeout=0.3)
    config = config.model_copy(update={"worker": config.worker.model_copy(update={"max_retries": 1})})
    client = await make_client(config, _broken_set(engines, hang=1.0))
    started = time.perf_counter()
    responses = await asyncio.gather(*(client.post("/api/v1/ocr/process", data=form(_label(f"T {n}")),
                                                   headers=auth()) for n in range(3)))
    assert [(await r.json())["error"]["code"] for r in responses] == ["TIMEOUT"] * 3
    assert time.perf_counter() - started < 30
    # Three hung calls, six attempts in all, yet never more OCR threads than workers: a timed-out worker
    # keeps its slot until its thread returns instead of starting another one.
    ocr_threads = [t for t in threading.enumerate() if t.name.startswith("ocr")]
    assert 1 <= len(ocr_threads) <= config.worker.workers
    await asyncio.sleep(1.5)
    health = (await (await client.get("/api/v1/health")).json())["data"]
    assert health["status"] == "healthy"
    ok = await client.post("/api/v1/ocr/process", data=form(b"junk"), headers=auth())
    assert ok.status == 415  # still serving


async def test_list_jobs_validates_its_query(make_client: ClientFactory) -> None:
    client = await make_client()
    assert (await client.get("/api/v1/ocr/jobs?status=bogus", headers=auth())).status == 400
    assert (await client.get("/api/v1/ocr/jobs?limit=0", headers=auth())).status == 400
    assert (await client.get("/api/v1/ocr/jobs?limit=x", headers=auth())).status == 400
    listed = (await (await client.get("/api/v1/ocr/jobs", headers=auth("shop-a", "u9"))).json())["data"]
    assert listed == {"jobs": [], "count": 0}


async def test_shutdown_closes_open_websockets(make_client: ClientFactory) -> None:
    from aiohttp import WSMsgType

    from edge_node import keys

    client = await make_client()
    ws = await client.ws_connect(f"/api/v1/ocr/ws?token={token_for()}")
    assert (await ws.receive_json())["event"] == "connected"
    await client.app[keys.EVENTS].close_all()
    message = await ws.receive(timeout=5)
    assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
