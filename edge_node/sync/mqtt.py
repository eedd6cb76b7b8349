"""The node's MQTT link: one paho-mqtt client (MQTT v5, QoS 1, persistent session) on its own network thread.

paho runs the network loop in its thread (`loop_start`); `publish` from any other thread only queues the
packet and wakes that loop, so no caller ever waits on the network. paho's callbacks run on the network thread
and are handed to the asyncio loop with `call_soon_threadsafe`. Reconnects back off exponentially with jitter,
between `reconnect_min_seconds` and `reconnect_max_seconds`. The broker publishes the retained last will when
the connection dies without a DISCONNECT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_node.config import ConfigError, SyncConfig

_LOGGER = logging.getLogger(__name__)

#: MQTT's registered ports: plain and TLS.
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
#: Every message of the sync protocol is QoS 1: at least once, the receiver deduplicates (DESIGN §5).
QOS = 1
#: A broker that sends no Receive Maximum accepts this many unacknowledged QoS 1 publishes (MQTT 5 §3.2.2.3.3).
MQTT_DEFAULT_RECEIVE_MAXIMUM = 65535
#: Publishes paho lets await the broker's PUBACK at once (more wait in paho's queue). paho neither honours the
#: broker's Receive Maximum nor lets it be changed once connected, so this is fixed before connecting:
#: Mosquitto's default Receive Maximum (EMQX allows 32). A lower broker value is logged as a warning.
BROKER_WINDOW = 20
#: paho keeps at most this many messages per window slot queued while waiting for PUBACKs; beyond it a publish
#: is refused (the outbox resends after its ack timeout), so a broker that stops answering cannot grow memory.
QUEUED_PER_WINDOW_SLOT = 4

#: The sync threads (paho's network loop, the envelope builder) run at this nice value: when OCR and sync compete
#: for the cores, the scheduler favours OCR (CFS weight 1024 vs 15); an idle node still syncs at full speed.
SYNC_THREAD_NICE = 19

MessageHandler = Callable[[str, bytes], None]
ConnectHandler = Callable[[bool], None]
DisconnectHandler = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker listens, parsed from `sync.broker_url`."""

    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; anything else is a configuration error."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError as err:
        raise ConfigError([f"sync.broker_url: bad port in {url!r}"]) from err
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigError([f"sync.broker_url: expected mqtt://HOST:PORT or mqtts://HOST:PORT, got {url!r}"])
    return BrokerAddress(parts.hostname, port or DEFAULT_PORTS[scheme], scheme == "mqtts")


def lower_thread_priority() -> None:
    """Give the calling thread SYNC_THREAD_NICE (Linux only: there setpriority on a thread id is per thread)."""
    if sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), SYNC_THREAD_NICE))
    except OSError as err:
        _LOGGER.debug("cannot lower the sync thread's priority: %s", err)


class Backoff:
    """Reconnect delays: the n-th is uniform in [minimum, min(maximum, minimum x 2^n)] (jitter spreads a fleet)."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self._rng = rng or random.Random()
        self._failures = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to the maximum."""
        self._failures += 1
        ceiling = min(self.maximum, self.minimum * 2.0 ** min(self._failures, 32))
        return self._rng.uniform(self.minimum, ceiling)

    def reset(self) -> None:
        """After a successful connection the next failure starts again from the minimum."""
        self._failures = 0


class MqttLink:
    """A long-lived MQTT v5 connection with a last will, persistent session and automatic reconnects."""

    def __init__(self, settings: SyncConfig, client_id: str, *, will_topic: str, will_payload: bytes,
                 rng: random.Random | None = None) -> None:
        self.address = parse_broker_url(settings.broker_url)
        self._settings = settings
        self._backoff = Backoff(settings.reconnect_min_seconds, settings.reconnect_max_seconds, rng)
        self._handlers: dict[str, tuple[MessageHandler, bool]] = {}
        self._on_connect: list[ConnectHandler] = []
        self._on_disconnect: list[DisconnectHandler] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = threading.Event()
        self._failures_logged = 0
        self._stopping = False
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if self.address.tls:
            client.tls_set(
                ca_certs=str(settings.tls_ca_file) if settings.tls_ca_file else None,
                certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
                keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
            )
        client.will_set(will_topic, will_payload, qos=QOS, retain=True)
        client.max_queued_messages_set(settings.max_in_flight * QUEUED_PER_WINDOW_SLOT)
        client.max_inflight_messages_set(min(BROKER_WINDOW, settings.max_in_flight))
        client.on_pre_connect = lambda _client, _userdata: lower_thread_priority()
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        self.client = client

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the loss of the connection."""
        return self._connected.is_set()

    def subscribe(self, topic: str, handler: MessageHandler, *, on_network_thread: bool = False) -> None:
        """Subscribe (QoS 1) on every connect; `handler(topic, payload)` runs on the asyncio loop, or on the
        network thread (it must then be quick and thread-safe, e.g. to coalesce a flood of small messages)."""
        self._handlers[topic] = (handler, on_network_thread)

    def on_connect(self, handler: ConnectHandler) -> None:
        """`handler(session_present)` runs on the asyncio loop after each successful connect."""
        self._on_connect.append(handler)

    def on_disconnect(self, handler: DisconnectHandler) -> None:
        """`handler(reason)` runs on the asyncio loop when the connection is lost."""
        self._on_disconnect.append(handler)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the network thread; it connects (and keeps reconnecting) in the background."""
        self._loop = loop
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._settings.session_expiry_seconds
        self.client.connect_async(self.address.host, self.address.port, self._settings.keepalive_seconds,
                                  clean_start=False, properties=properties)
        self.client.loop_start()
        _LOGGER.info("MQTT link to %s:%d started (tls=%s)", self.address.host, self.address.port, self.address.tls)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Queue a QoS 1 message; False when paho refused it (its queue is full). Never blocks on the network.

        A message queued while the connection is down is sent by paho after the next connect.
        """
        info = self.client.publish(topic, payload, qos=QOS, retain=retain)
        return info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN)

    def stop(self, farewell: tuple[str, bytes] | None = None, timeout: float = 2.0) -> None:
        """Publish `farewell` (retained) if connected, DISCONNECT, and join the network thread. Blocking."""
        self._stopping = True
        if farewell is not None and self.connected:
            info = self.client.publish(farewell[0], farewell[1], qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (ValueError, RuntimeError) as err:
                _LOGGER.warning("could not publish the final status: %s", err)
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    # ---- paho callbacks: these run on the network thread -------------------------------------------------------
    def _handle_connect(self, client: paho.Client, _userdata: Any, flags: paho.ConnectFlags,
                        reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            _LOGGER.warning("MQTT broker %s refused the connection: %s", self.address.host, reason)
            return
        receive_maximum = int(getattr(properties, "ReceiveMaximum", MQTT_DEFAULT_RECEIVE_MAXIMUM))
        if receive_maximum < client.max_inflight_messages:
            _LOGGER.warning("the broker accepts %d unacknowledged publishes, fewer than the %d we may send",
                            receive_maximum, client.max_inflight_messages)
        for topic in self._handlers:
            client.subscribe(topic, qos=QOS)
        self._backoff.reset()
        self._failures_logged = 0
        self._connected.set()
        _LOGGER.info("MQTT connected to %s:%d (session present: %s)", self.address.host, self.address.port,
                     flags.session_present)
        for handler in self._on_connect:
            self.hand_off(handler, flags.session_present)

    def _handle_connect_fail(self, client: paho.Client, _userdata: Any) -> None:
        self._schedule_reconnect(client, "cannot connect")

    def _handle_disconnect(self, client: paho.Client, _userdata: Any, _flags: paho.DisconnectFlags,
                           reason: ReasonCode, _properties: Properties | None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected:
            for handler in self._on_disconnect:
                self.hand_off(handler, str(reason))
        if self._stopping:
            _LOGGER.info("MQTT link to %s:%d closed", self.address.host, self.address.port)
            return
        self._schedule_reconnect(client, f"disconnected ({reason})")

    def _handle_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        entry = self._handlers.get(message.topic)
        if entry is None:
            _LOGGER.debug("ignoring a message on %s", message.topic)
            return
        handler, on_network_thread = entry
        if on_network_thread:
            handler(message.topic, bytes(message.payload))
        else:
            self.hand_off(handler, message.topic, bytes(message.payload))

    def _schedule_reconnect(self, client: paho.Client, why: str) -> None:
        """paho waits reconnect_delay before its next attempt: make that our jittered delay."""
        delay = self._backoff.next()
        # paho annotates the delays as int but computes with floats; sub-second jitter matters here.
        client.reconnect_delay_set(cast(int, delay), cast(int, delay))
        level = logging.WARNING if self._failures_logged == 0 else logging.DEBUG
        self._failures_logged += 1
        _LOGGER.log(level, "MQTT %s:%d %s; retrying in %.1f s", self.address.host, self.address.port, why, delay)

    def hand_off(self, fn: Callable[..., None], *args: object) -> None:
        """Run `fn(*args)` on the asyncio loop (we are on paho's thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed between the check and the call (shutdown)
            _LOGGER.debug("event loop closed; dropped an MQTT event")
