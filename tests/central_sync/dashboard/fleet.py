"""Two nodes of two shops, as central sees them through MQTT: jobs, errors, statuses and clerks' corrections.

shop-1/node-a: 3 completed jobs, 1 failed (LOW_QUALITY), corrections of a-1 (twice) and a-2, status online.
shop-2/node-b: 1 completed job, status online (then offline when asked). Corrections are built with the node's
own code (edge_node.store.corrections.metrics_body), so central reads exactly what a node sends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from edge_node.store.corrections import Correction, FieldCheck, metrics_body
from shared_models.messages import NodeStatus
from shared_models.topics import UpKind, up_topic
from tests.central_sync.harness import FakeNode, error_body, result_body

NODES = (("shop-1", "node-a"), ("shop-2", "node-b"))


def correction(job_id: str, checks: dict[str, bool], at: datetime, shop_id: str = "shop-1") -> dict[str, Any]:
    """A correction outbox body exactly as the node builds it (right fields kept the node's value)."""
    found = [FieldCheck(name, 1.0, 1.0 if right else 2.0, right) for name, right in checks.items()]
    return metrics_body(Correction(job_id, "clerk-1", "ppocr", {}, found, at.isoformat()), shop_id)


async def publish_status(mqtt_url: str, shop_id: str, node_id: str, state: str, backlog: int = 0,
                         at: datetime | None = None) -> None:
    """Publish a node's retained status (what its connection, or its last will, publishes)."""
    status = NodeStatus(node_id=node_id, shop_id=shop_id, state=state, version="0.1.0",
                        model_versions={"ppocr": "v6"}, backlog=backlog, at=at or datetime.now(UTC))
    node = FakeNode(mqtt_url, shop_id, f"{node_id}-status")
    try:
        await node.publish(status.model_dump_json().encode(), UpKind.STATUS, up_topic(shop_id, node_id, UpKind.STATUS),
                           retain=True)
    finally:
        node.close()


async def seed(mqtt_url: str, *, b_offline: bool = True) -> None:
    """Sync both nodes' data; node-b ends offline unless `b_offline` is false."""
    a, b = FakeNode(mqtt_url, "shop-1", "node-a"), FakeNode(mqtt_url, "shop-2", "node-b")
    try:
        now = datetime.now(UTC)
        for seq in (1, 2, 3):
            await a.send(seq, UpKind.RESULTS, result_body(f"a-{seq}", "shop-1"))
        await a.send(4, UpKind.ERRORS, error_body("a-4", "shop-1", code="LOW_QUALITY"))
        # The same job corrected twice: only the later correction counts (price right; sku is gone).
        await a.send(5, UpKind.METRICS, correction("a-1", {"price": True, "sku": False}, now - timedelta(minutes=2)))
        await a.send(6, UpKind.METRICS, correction("a-1", {"price": True}, now - timedelta(minutes=1)))
        await a.send(7, UpKind.METRICS, correction("a-2", {"price": False, "product_name": True}, now))
        await a.wait_acked(7)
        await b.send(1, UpKind.RESULTS, result_body("b-1", "shop-2"))
        await b.wait_acked(1)
    finally:
        a.close()
        b.close()
    await publish_status(mqtt_url, "shop-1", "node-a", "online", backlog=2, at=now)
    await publish_status(mqtt_url, "shop-2", "node-b", "online", at=now)
    if b_offline:
        await publish_status(mqtt_url, "shop-2", "node-b", "offline", at=now + timedelta(seconds=1))
