"""MQTT topic names of the sync protocol (DESIGN §5). Every topic is built here, nowhere else."""

from __future__ import annotations

from enum import Enum

PREFIX = "zakpos/v1"
#: Shared subscription so several central replicas split the upstream load.
CENTRAL_SHARE_GROUP = "central"
MODELS_ANNOUNCE = f"{PREFIX}/models/announce"


class UpKind(str, Enum):
    """What a node publishes upstream."""

    RESULTS = "results"
    ERRORS = "errors"
    METRICS = "metrics"
    STATUS = "status"


def _check_segment(value: str) -> str:
    if not value or any(ch in value for ch in "/+#\0"):
        raise ValueError(f"invalid topic segment {value!r}")
    return value


def up_topic(shop_id: str, node_id: str, kind: UpKind) -> str:
    """zakpos/v1/{shop}/{node}/up/{kind}."""
    return f"{PREFIX}/{_check_segment(shop_id)}/{_check_segment(node_id)}/up/{kind.value}"


def ack_topic(shop_id: str, node_id: str) -> str:
    """zakpos/v1/{shop}/{node}/down/ack."""
    return f"{PREFIX}/{_check_segment(shop_id)}/{_check_segment(node_id)}/down/ack"


def models_topic(shop_id: str, node_id: str) -> str:
    """zakpos/v1/{shop}/{node}/down/models."""
    return f"{PREFIX}/{_check_segment(shop_id)}/{_check_segment(node_id)}/down/models"


def central_subscription() -> str:
    """$share/central/zakpos/v1/+/+/up/#."""
    return f"$share/{CENTRAL_SHARE_GROUP}/{PREFIX}/+/+/up/#"


def parse_up_topic(topic: str) -> tuple[str, str, UpKind] | None:
    """(shop_id, node_id, kind) of an upstream topic, or None when it is not one."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != PREFIX or parts[4] != "up":
        return None
    try:
        return parts[2], parts[3], UpKind(parts[5])
    except ValueError:
        return None
