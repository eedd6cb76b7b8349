"""The retained node status: `online` on connect, the last will `offline` when the connection dies."""

from __future__ import annotations

import socket

from edge_node import __version__
from edge_node.store.db import Database
from shared_models.topics import UpKind, up_topic
from tests.edge_node.sync.brokers import Mosquitto, StatusWatcher, eventually, retained_status
from tests.edge_node.sync.conftest import NODE, SHOP, PublisherFactory, add_results

STATUS = up_topic(SHOP, NODE, UpKind.STATUS)


async def test_abrupt_disconnect_publishes_the_offline_will_and_reconnect_goes_online(
    broker: Mosquitto, db: Database, make_publisher: PublisherFactory
) -> None:
    add_results(db, 3)
    publisher = await make_publisher(broker.url)
    watcher = StatusWatcher(broker.port, STATUS).start()
    try:
        assert await eventually(lambda: watcher.states()[-1:] == ["online"], 5)
        online = watcher.statuses[-1]
        assert (online.node_id, online.shop_id, online.version) == (NODE, SHOP, __version__)
        assert online.backlog == 3

        # The network dies under the node: no DISCONNECT reaches the broker, so it publishes the will.
        sock = publisher.link.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        assert await eventually(lambda: "offline" in watcher.states(), 5)
        offline = watcher.statuses[watcher.states().index("offline")]
        assert offline.node_id == NODE and offline.backlog is None

        # The node reconnects by itself and says so.
        assert await eventually(lambda: watcher.states()[-1] == "online" and publisher.connected, 5)
        status = retained_status(broker.port, STATUS)
        assert status is not None and status.state == "online"
    finally:
        watcher.stop()


async def test_graceful_stop_leaves_offline_retained(
    broker: Mosquitto, db: Database, make_publisher: PublisherFactory
) -> None:
    publisher = await make_publisher(broker.url)
    assert await eventually(lambda: publisher.connected, 5)
    assert await eventually(lambda: getattr(retained_status(broker.port, STATUS), "state", None) == "online", 5)
    await publisher.stop()
    status = retained_status(broker.port, STATUS)
    assert status is not None and status.state == "offline"
