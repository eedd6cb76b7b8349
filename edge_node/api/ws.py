"""GET /api/v1/ocr/ws: job events pushed to tablets over a WebSocket.

Authentication: `?token=` on the upgrade, or a first message `{"token": "..."}`. A client receives the
events of its own shop only: all of them, or those of the jobs it subscribed to with
`{"action": "subscribe", "job_id": "..."}` (`?job_id=` works too). Each client has a bounded queue;
a client too slow to drain it is disconnected rather than allowed to hold the node back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from edge_node import keys
from edge_node.api.middlewares import PRINCIPAL
from edge_node.auth import Principal
from edge_node.errors import EdgeError
from edge_node.store.jobs import JobRecord

_LOGGER = logging.getLogger(__name__)

#: Events buffered per client; a tablet on a bad Wi-Fi link that falls this far behind is dropped.
CLIENT_QUEUE_SIZE = 256
#: A client must authenticate within this time when it did not send a token on the upgrade.
AUTH_TIMEOUT_SECONDS = 10
#: Close code for "try again later" (RFC 6455 1013) used for clients that cannot keep up.
CLOSE_TRY_AGAIN_LATER = 1013


@dataclass(eq=False)
class _Client:
    principal: Principal
    ws: web.WebSocketResponse | None = None
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE_SIZE))
    job_ids: set[str] = field(default_factory=set)
    overflowed: bool = False

    def wants(self, job: JobRecord) -> bool:
        return job.shop_id == self.principal.shop_id and (not self.job_ids or job.id in self.job_ids)


class EventHub:
    """Fans job events out to WebSocket clients; called on the event loop by the job queue."""

    def __init__(self) -> None:
        self._clients: set[_Client] = set()

    def publish(self, event: str, job: JobRecord, data: dict[str, Any]) -> None:
        """Queue the event for every client that may see it; never blocks."""
        message = {"event": event, "job_id": job.id, **data}
        for client in list(self._clients):
            if not client.wants(job):
                continue
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                client.overflowed = True

    async def close_all(self, _app: web.Application | None = None) -> None:
        """On shutdown: close every socket so open tablet pages do not hold the node's exit back."""
        for client in list(self._clients):
            if client.ws is not None and not client.ws.closed:
                await client.ws.close(code=1001, message=b"node shutting down")

    @property
    def client_count(self) -> int:
        """Connected clients."""
        return len(self._clients)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The WebSocket endpoint."""
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        principal = request.get(PRINCIPAL)
        if principal is None:
            principal = await self._authenticate(request, ws)
            if principal is None:
                return ws
        client = _Client(principal, ws)
        if "job_id" in request.query:
            client.job_ids.add(request.query["job_id"])
        self._clients.add(client)
        sender = asyncio.create_task(self._send(ws, client))
        try:
            await ws.send_json({"event": "connected", "shop_id": principal.shop_id})
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._command(ws, client, message.data)
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self._clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _authenticate(self, request: web.Request, ws: web.WebSocketResponse) -> Principal | None:
        try:
            message = await ws.receive_json(timeout=AUTH_TIMEOUT_SECONDS)
            principal = request.app[keys.VERIFIER].verify(str(message.get("token", "")))
        except EdgeError as err:
            await ws.send_json({"event": "error", "error": {"code": err.code.value, "message": err.message}})
            await ws.close(code=4401 if err.status == 401 else 4403)
            return None
        except (TimeoutError, ValueError, TypeError, AttributeError):
            await ws.send_json({"event": "error", "error": {"code": "UNAUTHORIZED", "message": "send a token"}})
            await ws.close(code=4401)
            return None
        return principal

    async def _command(self, ws: web.WebSocketResponse, client: _Client, raw: str) -> None:
        try:
            command = json.loads(raw)
            action = command.get("action")
        except (ValueError, AttributeError):
            await ws.send_json({"event": "error", "error": {"code": "VALIDATION_ERROR", "message": "send JSON"}})
            return
        if action == "subscribe" and isinstance(command.get("job_id"), str):
            client.job_ids.add(command["job_id"])
            await ws.send_json({"event": "subscribed", "job_id": command["job_id"]})
        elif action == "subscribe_all":
            client.job_ids.clear()
            await ws.send_json({"event": "subscribed", "job_id": None})
        elif action == "ping":
            await ws.send_json({"event": "pong"})
        else:
            await ws.send_json(
                {"event": "error", "error": {"code": "VALIDATION_ERROR", "message": f"unknown action {action!r}"}}
            )

    async def _send(self, ws: web.WebSocketResponse, client: _Client) -> None:
        while not ws.closed:
            if client.overflowed:
                _LOGGER.info("closing a WebSocket client that fell %d events behind", CLIENT_QUEUE_SIZE)
                await ws.close(code=CLOSE_TRY_AGAIN_LATER, message=b"too slow")
                return
            message = await client.queue.get()
            try:
                await ws.send_json(message)
            except ConnectionResetError:
                return
