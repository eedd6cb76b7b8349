"""The model-update subscriber: central's announcements, retained and per node, handed to the model manager.

Both topics carry the same `ModelAnnouncement`; the manager keeps only the newest revision. The subscriptions are
registered on the sync link before it connects and are renewed on every reconnect (MqttLink).
"""

from __future__ import annotations

from collections.abc import Callable

from edge_node.sync.mqtt import MqttLink
from shared_models.topics import MODELS_ANNOUNCE, models_topic

AnnouncementHandler = Callable[[str, bytes], None]


def subscribe_model_updates(link: MqttLink, shop_id: str, node_id: str, handler: AnnouncementHandler) -> list[str]:
    """Route `zakpos/v1/models/announce` and this node's `down/models` to `handler` (on the event loop)."""
    topics = [MODELS_ANNOUNCE, models_topic(shop_id, node_id)]
    for topic in topics:
        link.subscribe(topic, handler)
    return topics
