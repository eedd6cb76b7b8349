"""Publishing the model announcement (shared_models.model_updates.ModelAnnouncement) over MQTT.

- After a change, `central-sync models` publishes it RETAINED (QoS 1) on MODELS_ANNOUNCE, where a node that
  connects later finds it, and (not retained, QoS 1) on every known node's `.../down/models`, which the broker
  queues in the node's persistent session while it is offline. It connects on its own (a one-shot client with
  the central credentials and TLS settings, never the serving replica's client id) and waits for every PUBACK,
  so a refused publish (ACL) or an unreachable broker is reported, not lost.
- The serving central (`Announcer`) publishes the current announcement again, retained, every time its MQTT link
  connects: a broker that lost its retained store (a new volume, a restore) is healed within one reconnect.

Nodes apply an announcement only when its revision is newer than the one they applied, so repeats are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import threading
import time
from collections.abc import Sequence

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central_sync import registry_store
from central_sync.config import MqttConfig
from central_sync.errors import AnnounceError, CentralError
from central_sync.mqtt import MqttLink, broker_address
from central_sync.rollout_plan import announcement
from shared_models.model_updates import ModelAnnouncement
from shared_models.topics import MODELS_ANNOUNCE, models_topic

_LOGGER = logging.getLogger(__name__)

#: QoS 1 messages the one-shot client keeps in flight (one per known node, plus the retained one).
MAX_IN_FLIGHT = 1000
#: How long the serving replica waits for the broker to take its re-announcement.
REANNOUNCE_TIMEOUT_SECONDS = 30.0


async def load_announcement(conn: AsyncConnection) -> ModelAnnouncement:
    """The announcement of the current state: the last change's revision and time, every active rollout."""
    revision, at, epoch = await registry_store.current_revision(conn)
    return announcement(revision, at, await registry_store.list_rollouts(conn), epoch)


def payload(announced: ModelAnnouncement) -> bytes:
    """The JSON nodes receive."""
    return announced.model_dump_json().encode()


def node_topics(node_shops: dict[str, str]) -> list[str]:
    """The down/models topic of every known node (nodes whose ids cannot be topic segments are left out)."""
    topics = []
    for node_id, shop_id in sorted(node_shops.items()):
        try:
            topics.append(models_topic(shop_id, node_id))
        except ValueError:
            _LOGGER.warning("node %s of shop %s has an id that cannot be an MQTT topic segment", node_id, shop_id)
    return topics


def _client(config: MqttConfig) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{config.client_id}-models-{os.getpid()}", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(MAX_IN_FLIGHT)
    if config.username is not None:
        client.username_pw_set(config.username, config.password)
    if broker_address(config.url)[2]:
        ca_certs, certfile, keyfile = config.tls_files()
        client.tls_set(ca_certs=ca_certs, certfile=certfile, keyfile=keyfile, cert_reqs=ssl.CERT_REQUIRED)
    return client


def publish_once(config: MqttConfig, data: bytes, topics: Sequence[str], timeout: float) -> None:
    """Blocking: publish `data` retained on MODELS_ANNOUNCE and plainly on `topics`; every PUBACK within `timeout`."""
    host, port, _tls = broker_address(config.url)
    client = _client(config)
    connected = threading.Event()
    refused: list[str] = []
    failed: dict[int, str] = {}

    def on_connect(client: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            refused.append(str(reason))
        connected.set()

    def on_publish(client: paho.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            failed[mid] = str(reason)

    client.on_connect = on_connect
    client.on_publish = on_publish
    deadline = time.monotonic() + timeout
    try:
        client.connect(host, port, keepalive=config.keepalive_seconds, clean_start=True)
    except (OSError, ssl.SSLError) as err:
        raise AnnounceError(f"cannot reach the MQTT broker at {config.url}: {err}") from err
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise AnnounceError(f"the MQTT broker at {config.url} did not answer within {timeout:.0f} s")
        if refused:
            raise AnnounceError(f"the MQTT broker at {config.url} refused the connection: {refused[0]}")
        sent = [(MODELS_ANNOUNCE, client.publish(MODELS_ANNOUNCE, data, qos=1, retain=True))]
        sent.extend((topic, client.publish(topic, data, qos=1)) for topic in topics)
        for topic, info in sent:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as err:
                raise AnnounceError(f"publishing on {topic} failed: {err}") from err
            if not info.is_published():
                raise AnnounceError(f"the MQTT broker did not take the announcement within {timeout:.0f} s")
        refusals = [(topic, failed[info.mid]) for topic, info in sent if info.mid in failed]
        if refusals:
            topic, reason = refusals[0]
            raise AnnounceError(
                f"the MQTT broker refused {len(refusals)} of {len(sent)} publishes (first: {topic}: {reason}); "
                "check that the ACL lets this user write the model topics"
            )
    finally:
        client.disconnect()
        client.loop_stop()


class Announcer:
    """The serving replica's re-announcement: on every connection of `link`, publish the current state retained."""

    def __init__(self, engine: AsyncEngine, link: MqttLink) -> None:
        self._engine = engine
        self._link = link
        self._task: asyncio.Task[int | None] | None = None
        self.published_revision: int | None = None
        self.last_error: str | None = None
        link.on_connected.append(self.schedule)

    def schedule(self) -> None:
        """Start a re-announcement (called on the loop when the link connects); one at a time."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.reannounce(), name="central-reannounce")

    async def reannounce(self) -> int | None:
        """Publish the current announcement retained (when there ever was a change); returns its revision."""
        try:
            async with registry_store.registry_lock(self._engine):
                async with self._engine.connect() as conn:
                    current = await load_announcement(conn)
                if current.revision == 0:
                    return None
                info = self._link.publish(MODELS_ANNOUNCE, payload(current), qos=1, retain=True)
                # Under the lock until the broker has it, so a change announced meanwhile cannot be overtaken.
                await asyncio.to_thread(info.wait_for_publish, REANNOUNCE_TIMEOUT_SECONDS)
                if not info.is_published():
                    raise TimeoutError(f"the broker did not take it within {REANNOUNCE_TIMEOUT_SECONDS:.0f} s")
        except (SQLAlchemyError, OSError, TimeoutError, RuntimeError, ValueError, CentralError) as err:
            self.last_error = f"re-announcing the model state failed: {err}"
            _LOGGER.warning("%s", self.last_error)
            return None
        self.published_revision = current.revision
        self.last_error = None
        _LOGGER.info("re-announced model state revision %d (%d rollouts)", current.revision, len(current.rollouts))
        return current.revision

    async def stop(self) -> None:
        """Cancel a re-announcement in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
