"""Store-and-forward sync with the central service over MQTT v5 (DESIGN §5).

`mqtt.MqttLink` owns the paho-mqtt client and its network thread; `outbox.OutboxPublisher` publishes the
outbox through it and applies central's acks.
"""

from edge_node.sync.outbox import OutboxPublisher

__all__ = ["OutboxPublisher"]
