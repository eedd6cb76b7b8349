"""A tiny Chrome DevTools Protocol client over aiohttp's WebSocket: enough to drive Debian's headless Chromium
(no selenium, no playwright, nothing downloaded). One browser process per `Browser`, pages as attached targets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

#: STACK-NOTES: the flags that work here (root needs --no-sandbox; no network of its own, no first-run UI).
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-dev-shm-usage", "--disable-extensions", "--disable-sync", "--mute-audio",
    "--hide-scrollbars", "--remote-debugging-port=0",
]
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
START_TIMEOUT = 20.0


def find_chromium() -> str | None:
    """The Chromium binary (CHROMIUM_BIN first), or None."""
    env = os.environ.get("CHROMIUM_BIN")
    if env and Path(env).exists():
        return env
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class CdpError(Exception):
    """A DevTools command failed."""


class Browser:
    """A headless Chromium process and its DevTools connection."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile
        self.process: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    async def start(self) -> Browser:
        """Launch and connect to the browser target."""
        self.profile.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            self.binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stderr is not None
        url = None
        deadline = time.monotonic() + START_TIMEOUT
        while url is None and time.monotonic() < deadline:
            line = await asyncio.wait_for(self.process.stderr.readline(), deadline - time.monotonic())
            if not line:
                break
            found = re.search(rb"DevTools listening on (ws://\S+)", line)
            url = found.group(1).decode() if found else None
        if url is None:
            raise CdpError("chromium did not open its DevTools port")
        # Keep draining stderr so a chatty browser never blocks on a full pipe.
        asyncio.create_task(self._drain(self.process.stderr))
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        return self

    @staticmethod
    async def _drain(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                for listener in list(self._listeners):
                    listener(data)

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """One command; returns its result or raises CdpError."""
        assert self._ws is not None
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self._ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Receive every event (dicts with method, params, sessionId)."""
        self._listeners.append(listener)

    async def new_page(self, width: int, height: int, mobile: bool = False) -> Page:
        """A fresh tab with the given viewport."""
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = Page(self, attached["sessionId"])
        for domain in ("Page.enable", "Runtime.enable", "Network.enable"):
            await page.send(domain)
        await page.resize(width, height, mobile)
        return page

    async def close(self) -> None:
        """Close the connection and stop the process (by its PID, as we started it)."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self.send("Browser.close")
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._session is not None:
            await self._session.close()
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class Page:
    """One attached tab."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        self.events: list[dict[str, Any]] = []
        browser.listen(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("sessionId") == self.session:
            self.events.append(event)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A command in this tab's session."""
        return await self.browser.send(method, self.session, **params)

    async def resize(self, width: int, height: int, mobile: bool = False) -> None:
        """Emulate a screen of this size (a phone with touch when `mobile`)."""
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                        mobile=mobile)
        await self.send("Emulation.setTouchEmulationEnabled", enabled=mobile)

    async def goto(self, url: str, within: float = 15.0) -> None:
        """Navigate and wait for the load event."""
        start = len(self.events)
        await self.send("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired", within, since=start)

    async def wait_event(self, method: str, within: float = 15.0, since: int = 0) -> dict[str, Any]:
        """The first event `method` at or after index `since`."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for event in self.events[since:]:
                if event["method"] == method:
                    return event
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {method} within {within} s")

    async def evaluate(self, expression: str) -> Any:
        """Run JavaScript in the page; returns its (JSON-able) value, awaiting promises."""
        reply = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            raise CdpError(f"{expression[:80]}: {details.get('exception', details)}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, within: float = 15.0, what: str = "") -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + within
        value = None
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{what or expression} not true within {within} s (last value {value!r})")

    async def set_files(self, selector: str, *paths: Path) -> None:
        """Put files into an <input type=file> (the page gets its change event)."""
        root = await self.send("DOM.getDocument", depth=0)
        node = await self.send("DOM.querySelector", nodeId=root["root"]["nodeId"], selector=selector)
        await self.send("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(p) for p in paths])

    async def fill(self, selector: str, value: str) -> None:
        """Set an input's value as typing would (an input event follows)."""
        await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); el.value = {json.dumps(value)};"
            " el.dispatchEvent(new Event('input', {bubbles: true})); })()"
        )

    async def click(self, selector: str) -> None:
        """Click an element."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    async def text(self, selector: str) -> str:
        """An element's text."""
        return str(await self.evaluate(f"document.querySelector({json.dumps(selector)}).textContent"))

    async def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """Save a PNG of the page."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        data = base64.b64decode(shot["data"])
        await asyncio.to_thread(lambda: (path.parent.mkdir(parents=True, exist_ok=True), path.write_bytes(data)))
        return path

    def websocket_frames(self) -> list[dict[str, Any]]:
        """JSON frames the page received over WebSockets (from Network.webSocketFrameReceived)."""
        frames = []
        for event in self.events:
            if event["method"] == "Network.webSocketFrameReceived":
                with contextlib.suppress(ValueError, KeyError):
                    frames.append(json.loads(event["params"]["response"]["payloadData"]))
        return frames
