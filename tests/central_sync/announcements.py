"""A node's ear for model announcements in the tests: an MQTT v5 client subscribed to the fleet-wide retained topic
and/or a node's down/models topic, keeping every ModelAnnouncement it receives (with its retain flag)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from shared_models.model_updates import ModelAnnouncement
from tests.central_sync.harness import WAIT_SECONDS


@dataclass(frozen=True)
class Heard:
    """One received announcement."""

    topic: str
    retain: bool
    announcement: ModelAnnouncement


class Listener:
    """Subscribes (QoS 1) to `topics` and records what arrives."""

    def __init__(self, mqtt_url: str, topics: list[str], client_id: str) -> None:
        host, port = mqtt_url.removeprefix("mqtt://").split(":")
        self._lock = threading.Lock()
        self._heard: list[Heard] = []
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect(host, int(port))
        self.client.subscribe([(topic, 1) for topic in topics])
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError(f"could not subscribe to {topics}")

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        heard = Heard(message.topic, bool(message.retain), ModelAnnouncement.model_validate_json(message.payload))
        with self._lock:
            self._heard.append(heard)

    @property
    def heard(self) -> list[Heard]:
        """Everything received so far."""
        with self._lock:
            return list(self._heard)

    async def revision(self, revision: int, within: float = WAIT_SECONDS) -> Heard:
        """The first received announcement of `revision` (waiting for it)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = next((h for h in self.heard if h.announcement.revision == revision), None)
            if found is not None:
                return found
            await asyncio.sleep(0.05)
        revisions = [h.announcement.revision for h in self.heard]
        raise AssertionError(f"no announcement of revision {revision}; heard revisions {revisions}")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
