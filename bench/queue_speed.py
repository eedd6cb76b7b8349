"""Queue figures against a real node process: async throughput at 1 and 2 workers, cache-hit latency,
and recovery after SIGKILL mid-queue. ``python -m bench queue`` prints them and updates docs/BENCHMARKS.md.

* Throughput: JOBS price-tag crops from ../shared/bench submitted at once to /ocr/process/async (cache off);
  jobs/s = JOBS / (time from the first submit to the last job completed, read from the node's SQLite).
* Cache hit: one crop processed once, then posted CACHE_REPEATS more times one after another to /ocr/process;
  p50 of the client-side wall time of those repeats.
* Recovery: RECOVERY_JOBS async jobs, SIGKILL once some are done, restart: seconds to healthy, and to the
  last job completed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.datasets import DEFAULT_DATA_DIR
from bench.node_process import EdgeProcess
from bench.report import DOCS_PATH, update_docs
from bench.sets import SETS

JOBS = 60
CACHE_REPEATS = 50
RECOVERY_JOBS = 50
SECTION = "queue"


def _images(count: int) -> list[bytes]:
    crops = sorted((DEFAULT_DATA_DIR / "price_tags").glob("*.jpg"))
    return [crops[i % len(crops)].read_bytes() for i in range(count)]


def _completed(node: EdgeProcess) -> int:
    with sqlite3.connect(node.data_dir / "edge.sqlite3", timeout=10) as conn:
        row = conn.execute("SELECT COUNT(*) FROM ocr_processing_jobs WHERE status = 'completed'").fetchone()
    return int(row[0])


def _wait_completed(node: EdgeProcess, count: int, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while _completed(node) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} jobs not completed in {seconds} s")
        time.sleep(0.02)


async def _post(session: aiohttp.ClientSession, url: str, token: str, image: bytes) -> int:
    form = aiohttp.FormData()
    form.add_field("image", image, filename="tag.jpg")
    async with session.post(url, data=form, headers={"Authorization": f"Bearer {token}"}) as response:
        await response.read()
        return response.status


async def _submit_all(node: EdgeProcess, images: list[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(*(_post(session, f"{node.url}/api/v1/ocr/process/async", node.token(), i)
                                          for i in images))
    if set(statuses) != {202}:
        raise RuntimeError(f"unexpected statuses {sorted(set(statuses))}")


def throughput(workers: int, root: Path) -> float:
    """Jobs per second with `workers` workers."""
    node = EdgeProcess(root / f"w{workers}", workers=workers, EDGE_CACHE__ENABLED="false",
                       EDGE_WORKER__SOFT_QUEUE_LIMIT="1000", EDGE_WORKER__HARD_QUEUE_LIMIT="1000",
                       EDGE_RATE_LIMIT_USER_PER_MIN="0", EDGE_RATE_LIMIT_SHOP_PER_HOUR="0")
    with node:
        started = time.monotonic()
        asyncio.run(_submit_all(node, _images(JOBS)))
        _wait_completed(node, JOBS)
        return JOBS / (time.monotonic() - started)


async def _repeat(node: EdgeProcess, image: bytes) -> list[float]:
    times = []
    async with aiohttp.ClientSession() as session:
        await _post(session, f"{node.url}/api/v1/ocr/process", node.token(), image)
        for _ in range(CACHE_REPEATS):
            started = time.perf_counter()
            await _post(session, f"{node.url}/api/v1/ocr/process", node.token(), image)
            times.append((time.perf_counter() - started) * 1000)
    return times


def cache_hit_ms(root: Path) -> float:
    """p50 of a cache hit through the API."""
    node = EdgeProcess(root / "cache", EDGE_RATE_LIMIT_USER_PER_MIN="0", EDGE_RATE_LIMIT_SHOP_PER_HOUR="0")
    with node:
        return statistics.median(asyncio.run(_repeat(node, _images(1)[0])))


def recovery(root: Path) -> tuple[int, float, float]:
    """(jobs done at the kill, seconds to healthy after restart, seconds to all completed after restart)."""
    node = EdgeProcess(root / "recovery", EDGE_CACHE__ENABLED="false", EDGE_RATE_LIMIT_USER_PER_MIN="0",
                       EDGE_RATE_LIMIT_SHOP_PER_HOUR="0", EDGE_WORKER__SOFT_QUEUE_LIMIT="1000")
    node.start()
    try:
        asyncio.run(_submit_all(node, _images(RECOVERY_JOBS)))
        _wait_completed(node, 5)
        node.kill()
        done = _completed(node)
        restarted = time.monotonic()
        healthy = node.start()
        _wait_completed(node, RECOVERY_JOBS)
        return done, healthy, time.monotonic() - restarted
    finally:
        node.kill()


def main() -> int:
    """Run all three and update the docs section."""
    with tempfile.TemporaryDirectory(prefix="zakpos-queue-") as tmp:
        root = Path(tmp)
        rates = {workers: throughput(workers, root) for workers in (1, 2)}
        hit = cache_hit_ms(root)
        done, healthy, drained = recovery(root)
    lines = [
        "### queue: async throughput, cache hits, crash recovery (real node process)",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC} on this 2-core machine; command: "
        "`python -m bench queue`. Definitions in `bench/queue_speed.py`.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| async throughput, 1 worker ({JOBS} price-tag crops, cache off) | {rates[1]:.1f} jobs/s |",
        f"| async throughput, 2 workers | {rates[2]:.1f} jobs/s |",
        f"| cache hit through `/ocr/process`, p50 of {CACHE_REPEATS} | {hit:.1f} ms |",
        f"| SIGKILL with {RECOVERY_JOBS - done} of {RECOVERY_JOBS} jobs unfinished: healthy after restart | "
        f"{healthy:.2f} s |",
        f"| ... all {RECOVERY_JOBS} completed (each exactly once) after restart | {drained:.2f} s |",
    ]
    body = "\n".join(lines)
    print(body)
    update_docs(DOCS_PATH, SECTION, body, [*SETS, SECTION])
    return 0
