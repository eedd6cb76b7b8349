"""Bundle downloads: resumed with Range after a broken connection, checked against the announced sha256."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from edge_node.models.download import download_bundle
from edge_node.models.errors import ModelUpdateError
from shared_models.model_updates import BundleLocation, bundle_path

PATH = bundle_path("m", "1")
DATA = os.urandom(300_000)


def location(data: bytes = DATA) -> BundleLocation:
    return BundleLocation(path=PATH, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_get(PATH, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def file_handler(tmp_path: Path, data: bytes, seen: list[dict[str, str]]) -> Handler:
    source = tmp_path / "served.tar"
    source.write_bytes(data)

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.headers))
        return web.FileResponse(source)
    return handler


async def fetch(base: str, dest: Path, loc: BundleLocation | None = None, attempts: int = 3,
                token: str | None = "t0k") -> Path:
    async with aiohttp.ClientSession() as session:
        return await download_bundle(session, base, token, loc or location(), dest, attempts=attempts,
                                     timeout_seconds=5, backoff_seconds=0.01)


async def test_a_whole_download_is_verified_and_moved_into_place(serve, tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    base = await serve(file_handler(tmp_path, DATA, seen))
    dest = await fetch(base, tmp_path / "dl" / "b.tar")
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "dl" / "b.tar.part").exists()
    assert seen[0]["Authorization"] == "Bearer t0k" and "Range" not in seen[0]


async def test_a_broken_connection_is_resumed_with_range(serve, tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    serve_file = file_handler(tmp_path, DATA, seen)
    cut = {"done": False}

    async def flaky(request: web.Request) -> web.StreamResponse:
        if not cut["done"]:  # first request: send a third of the bytes, then drop the connection
            cut["done"] = True
            seen.append(dict(request.headers))
            response = web.StreamResponse(headers={"Content-Length": str(len(DATA))})
            await response.prepare(request)
            await response.write(DATA[:100_000])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()
            return response
        return await serve_file(request)

    base = await serve(flaky)
    dest = await fetch(base, tmp_path / "dl" / "b.tar")
    assert dest.read_bytes() == DATA
    assert "Range" not in seen[0]
    assert seen[1]["Range"] == "bytes=100000-", "the second request asks only for the rest"


async def test_a_part_file_from_an_earlier_run_is_resumed(serve, tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    base = await serve(file_handler(tmp_path, DATA, seen))
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "b.tar.part").write_bytes(DATA[:1234])
    dest = await fetch(base, tmp_path / "dl" / "b.tar")
    assert dest.read_bytes() == DATA and seen[0]["Range"] == "bytes=1234-"


async def test_a_server_that_ignores_range_sends_it_all_again(serve, tmp_path: Path) -> None:
    async def whole(request: web.Request) -> web.Response:
        return web.Response(body=DATA)

    base = await serve(whole)
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "b.tar.part").write_bytes(b"garbage")
    dest = await fetch(base, tmp_path / "dl" / "b.tar")
    assert dest.read_bytes() == DATA


async def test_bytes_that_do_not_match_the_announcement_are_refused(serve, tmp_path: Path) -> None:
    tampered = bytearray(DATA)
    tampered[5000] ^= 0xFF
    base = await serve(file_handler(tmp_path, bytes(tampered), []))
    with pytest.raises(ModelUpdateError, match="does not match the announced sha256") as caught:
        await fetch(base, tmp_path / "dl" / "b.tar")
    assert caught.value.stage == "download"
    assert not (tmp_path / "dl" / "b.tar").exists() and not (tmp_path / "dl" / "b.tar.part").exists()


async def test_a_server_sending_more_than_announced_never_fills_the_disk(serve, tmp_path: Path) -> None:
    base = await serve(file_handler(tmp_path, DATA + b"x" * 100_000, []))
    dest = await fetch(base, tmp_path / "dl" / "b.tar")  # the first len(DATA) bytes are the announced bundle
    assert dest.stat().st_size == len(DATA)


@pytest.mark.parametrize("status", [401, 404])
async def test_refusals_are_not_retried(serve, tmp_path: Path, status: int) -> None:
    calls: list[int] = []

    async def refuse(request: web.Request) -> web.Response:
        calls.append(1)
        return web.Response(status=status)

    base = await serve(refuse)
    with pytest.raises(ModelUpdateError, match=f"central answered {status}"):
        await fetch(base, tmp_path / "dl" / "b.tar", attempts=5)
    assert len(calls) == 1


async def test_no_link_to_central_fails_after_the_attempts(tmp_path: Path) -> None:
    with pytest.raises(ModelUpdateError, match="after 2 attempts") as caught:
        await fetch("http://127.0.0.1:9", tmp_path / "dl" / "b.tar", attempts=2)
    assert not caught.value.permanent
