"""The WebSocket fan-out alone: shop filtering, per-job subscriptions, and a slow client never blocking."""

from __future__ import annotations

from edge_node.api.ws import CLIENT_QUEUE_SIZE, EventHub, _Client
from edge_node.auth import Principal
from edge_node.store.jobs import JobRecord
from shared_models.jobs import JobStatus


def _job(job_id: str, shop: str) -> JobRecord:
    return JobRecord(
        id=job_id, shop_id=shop, user_id="u", document_type="product", options={}, status=JobStatus.QUEUED,
        image_hash=None, attempts=0, max_attempts=4, result=None, error_code=None, error_message=None,
        processing_time_ms=None, model_used=None, cached=False, created_at="", updated_at="", started_at=None,
        completed_at=None, idempotency_key=None,
    )


def _hub_with(*clients: _Client) -> EventHub:
    hub = EventHub()
    hub._clients.update(clients)  # the handler registers clients; here we test publish() alone
    return hub


async def test_events_reach_only_the_clients_allowed_to_see_them() -> None:
    shop_a = _Client(Principal("u1", "shop-a", "clerk"))
    one_job = _Client(Principal("u2", "shop-a", "clerk"), job_ids={"j2"})
    shop_b = _Client(Principal("u3", "shop-b", "clerk"))
    hub = _hub_with(shop_a, one_job, shop_b)
    hub.publish("job_queued", _job("j1", "shop-a"), {"queue_position": 1})
    hub.publish("job_queued", _job("j2", "shop-a"), {"queue_position": 2})
    assert [shop_a.queue.get_nowait()["job_id"] for _ in range(2)] == ["j1", "j2"]
    assert one_job.queue.get_nowait()["job_id"] == "j2" and one_job.queue.empty()
    assert shop_b.queue.empty()


async def test_a_client_that_stops_reading_is_marked_and_never_blocks_publishing() -> None:
    slow = _Client(Principal("u1", "shop-a", "clerk"))
    fast = _Client(Principal("u2", "shop-a", "clerk"))
    hub = _hub_with(slow, fast)
    for n in range(CLIENT_QUEUE_SIZE + 50):
        hub.publish("job_progress", _job(f"j{n}", "shop-a"), {"progress": 50})
        if not fast.queue.empty():
            fast.queue.get_nowait()  # the fast client keeps up
    assert slow.overflowed and slow.queue.qsize() == CLIENT_QUEUE_SIZE
    assert not fast.overflowed
