"""Resumable download of an announced bundle tar from central, checked against the announced size and sha256.

Bytes go to `DEST.part`; a broken connection leaves them there and the next attempt asks for the rest with a
`Range` header (a server that answers 200 instead of 206 sends it all again). Nothing beyond the announced size
is ever written. When the size is reached the file's sha256 must match the announcement, or the part file is
deleted (a corrupt resume starts over next time). 401/403/404 are not retried: they need an operator.
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import BinaryIO

import aiohttp

from edge_node.engines.bundle import sha256_file
from edge_node.models.errors import ModelUpdateError
from shared_models.model_updates import BundleLocation

_LOGGER = logging.getLogger(__name__)

#: Bytes read from the response per write.
CHUNK = 1 << 16
#: Statuses an operator has to fix (token, rollout of a bundle central no longer has): no retry.
FINAL_STATUSES = frozenset({401, 403, 404, 410})


async def download_bundle(session: aiohttp.ClientSession, base_url: str, token: str | None,
                          location: BundleLocation, dest: Path, *, attempts: int, timeout_seconds: float,
                          backoff_seconds: float = 1.0) -> Path:
    """Fetch the tar to `dest` (resuming a previous part), verify size and sha256; returns `dest`."""
    if await asyncio.to_thread(_complete, dest, location):
        return dest
    part = dest.with_name(dest.name + ".part")
    url = base_url.rstrip("/") + location.path
    last = "no attempt made"
    for attempt in range(1, attempts + 1):
        try:
            await _fetch(session, url, token, location.size, part, timeout_seconds)
        except ModelUpdateError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            last = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            _LOGGER.warning("bundle download from %s broke off (attempt %d of %d): %s", url, attempt, attempts, last)
            if attempt < attempts:
                await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
            continue
        have = _size(part)
        if have < location.size:
            last = f"the server sent {have} of {location.size} bytes"
            continue
        digest = await asyncio.to_thread(sha256_file, part)
        if digest != location.sha256:
            await asyncio.to_thread(part.unlink, missing_ok=True)
            raise ModelUpdateError(
                f"downloaded bundle {location.path} does not match the announced sha256 "
                f"({digest[:16]}... instead of {location.sha256[:16]}...): tampered or corrupted in transit",
                stage="download", permanent=False,
            )
        await asyncio.to_thread(part.replace, dest)
        return dest
    raise ModelUpdateError(f"cannot download {url} after {attempts} attempts: {last}", stage="download",
                           permanent=False)


async def _fetch(session: aiohttp.ClientSession, url: str, token: str | None, size: int, part: Path,
                 timeout_seconds: float) -> None:
    """One request: append the missing bytes to `part` (or rewrite it when the server ignores Range)."""
    have = _size(part)
    if have > size:
        await asyncio.to_thread(part.unlink)
        have = 0
    if have == size:
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_seconds, sock_read=timeout_seconds)
    async with session.get(url, headers=headers, timeout=timeout) as response:
        if response.status in FINAL_STATUSES:
            raise ModelUpdateError(f"central answered {response.status} for {url}", stage="download",
                                   permanent=False)
        if response.status == 200:
            have = 0
        elif response.status != 206:
            raise aiohttp.ClientResponseError(response.request_info, response.history, status=response.status,
                                              message=f"unexpected status {response.status}")
        with _open_at(part, have) as handle:  # small sequential writes land in the page cache
            async for chunk in response.content.iter_chunked(CHUNK):
                room = size - have
                if room <= 0:
                    break
                piece = chunk[:room]
                handle.write(piece)
                have += len(piece)


def _complete(dest: Path, location: BundleLocation) -> bool:
    """The tar is already here, whole (an earlier update was interrupted after the download)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest.is_file() and dest.stat().st_size == location.size and sha256_file(dest) == location.sha256


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _open_at(part: Path, offset: int) -> BinaryIO:
    """`part` opened for writing from `offset` on (anything after it is cut off)."""
    handle = part.open("r+b" if offset else "wb")
    handle.seek(offset)
    handle.truncate()
    return handle
