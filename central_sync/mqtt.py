"""The MQTT link of one central replica: paho-mqtt 2.x (MQTT v5) in its network thread, bridged to asyncio.

Persistent session (clean_start=False + SessionExpiryInterval) under a stable client id, QoS 1, and MANUAL
PUBACKs: a message is acknowledged to the broker only after its batch is committed, so a crash before the commit
makes the broker deliver it again. `receive_maximum` bounds how many unacknowledged messages we hold.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from central_sync.config import MqttConfig
from central_sync.errors import BrokerError
from central_sync.inbound import RawMessage

_LOGGER = logging.getLogger(__name__)

#: Outgoing QoS 1 messages (acks to nodes) paho keeps in flight before queueing locally.
MAX_OUTGOING_IN_FLIGHT = 1000


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an mqtt:// or mqtts:// URL."""
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    if not parts.hostname:
        raise BrokerError(f"no host in MQTT URL {url!r}", retriable=False)
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


class MqttLink:
    """One paho client; received messages are handed to `on_message` on the asyncio loop."""

    def __init__(
        self,
        config: MqttConfig,
        on_message: Callable[[RawMessage], None],
        *,
        subscription: str | None = None,
    ) -> None:
        self._config = config
        self._on_message = on_message
        self._subscription = subscription
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        #: Called on the asyncio loop after every successful (re)connection.
        self.on_connected: list[Callable[[], None]] = []
        self.generation = 0
        self.connected = False
        self.last_error: str | None = None
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        self._client.max_inflight_messages_set(MAX_OUTGOING_IN_FLIGHT)
        self._client.reconnect_delay_set(config.reconnect_min_seconds, config.reconnect_max_seconds)
        if config.username is not None:
            self._client.username_pw_set(config.username, config.password)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_connect_fail = self._handle_connect_fail
        self._client.on_message = self._handle_message

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers) and start the network thread."""
        self._loop = asyncio.get_running_loop()
        host, port, tls = broker_address(self._config.url)
        if tls:
            ca_certs, certfile, keyfile = self._config.tls_files()
            self._client.tls_set(ca_certs=ca_certs, certfile=certfile, keyfile=keyfile, cert_reqs=ssl.CERT_REQUIRED)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._config.session_expiry_seconds
        properties.ReceiveMaximum = self._config.receive_maximum
        self._client.connect_async(
            host, port, keepalive=self._config.keepalive_seconds, clean_start=False, properties=properties
        )
        self._client.loop_start()

    async def wait_connected(self, within: float) -> bool:
        """True once connected (and subscribed), False when `within` seconds pass first."""
        try:
            async with asyncio.timeout(within):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Disconnect and stop the network thread (the broker keeps our session)."""
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self.connected = False

    def publish(self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False) -> paho.MQTTMessageInfo:
        """Queue a publish; paho sends it now or after the next reconnect. The info tells when it was sent."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise BrokerError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        return info

    def ack(self, message: RawMessage) -> None:
        """PUBACK a QoS 1 message, unless it came on an earlier connection (the broker sends that one again)."""
        if message.qos > 0 and message.generation == self.generation and self.connected:
            self._client.ack(message.mid, message.qos)

    # -- paho callbacks: they run in the network thread; state goes to the loop with call_soon_threadsafe.

    def _call(self, func: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(func, *args)
        except RuntimeError:  # the loop closed between the check and the call
            return

    def _handle_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self.last_error = f"connect refused: {reason}"
            _LOGGER.warning("MQTT broker refused the connection: %s", reason)
            return
        if self._subscription is not None:
            client.subscribe(self._subscription, options=SubscribeOptions(qos=1))
        self.generation += 1
        self.connected = True
        self.last_error = None
        _LOGGER.info(
            "MQTT connected to %s as %s (session present: %s)",
            self._config.url, self._config.client_id, getattr(flags, "session_present", None),
        )
        self._call(self._connected.set)
        for listener in self.on_connected:
            self._call(listener)

    def _handle_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self.last_error = f"cannot reach the broker at {self._config.url}"
        _LOGGER.debug("MQTT connect to %s failed; retrying", self._config.url)

    def _handle_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self.connected = False
        self._call(self._connected.clear)
        if reason.is_failure:
            self.last_error = f"disconnected: {reason}"
            _LOGGER.warning("MQTT connection lost (%s); reconnecting", reason)

    def _handle_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers refuse such topics; never let one kill the network thread
            topic = message._topic.decode("utf-8", "replace")
        raw = RawMessage(
            topic=topic,
            payload=bytes(message.payload),
            mid=message.mid,
            qos=message.qos,
            retain=bool(message.retain),
            generation=self.generation,
        )
        self._call(self._on_message, raw)
