"""Soak: REQUESTS OCR requests against one real node; resident memory after warm-up versus at the end.

``python -m bench.soak [--requests N]`` prints the figures and rewrites the soak section of
docs/RELIABILITY.md. Images are the price-tag crops of ../shared/bench, cycled, with the cache off so every
request runs the pipeline; concurrency CONCURRENCY; RSS is the node process's VmRSS from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.datasets import DEFAULT_DATA_DIR
from bench.node_process import EdgeProcess
from bench.report import update_section

REQUESTS = 5000
WARM_UP = 500
CONCURRENCY = 4
RELIABILITY = Path(__file__).resolve().parents[1] / "docs" / "RELIABILITY.md"


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _run(node: EdgeProcess, images: list[bytes], count: int, start: int) -> dict[int, int]:
    gate = asyncio.Semaphore(CONCURRENCY)
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def one(n: int) -> None:
            async with gate:
                form = aiohttp.FormData()
                form.add_field("image", images[n % len(images)], filename="tag.jpg")
                async with session.post(f"{node.url}/api/v1/ocr/process", data=form,
                                        headers={"Authorization": f"Bearer {node.token()}"}) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(one(n) for n in range(start, start + count)))
    return statuses


def main(argv: list[str] | None = None) -> int:
    """Run the soak and write the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    args = parser.parse_args(argv)
    images = [p.read_bytes() for p in sorted((DEFAULT_DATA_DIR / "price_tags").glob("*.jpg"))]
    with tempfile.TemporaryDirectory(prefix="zakpos-soak-") as tmp:
        node = EdgeProcess(Path(tmp) / "node", EDGE_CACHE__ENABLED="false", EDGE_RATE_LIMIT_USER_PER_MIN="0",
                           EDGE_RATE_LIMIT_SHOP_PER_HOUR="0")
        with node:
            assert node.process is not None
            started = time.monotonic()
            first = asyncio.run(_run(node, images, WARM_UP, 0))
            after_warm_up = rss_mb(node.process.pid)
            rest = asyncio.run(_run(node, images, args.requests - WARM_UP, WARM_UP))
            at_end = rss_mb(node.process.pid)
            seconds = time.monotonic() - started
    statuses = {code: first.get(code, 0) + rest.get(code, 0) for code in {*first, *rest}}
    growth = 100 * (at_end - after_warm_up) / after_warm_up
    body = "\n".join([
        "### Soak: memory over many requests",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; command: `python -m bench.soak --requests "
        f"{args.requests}` (definitions in `bench/soak.py`).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests (price-tag crops, cache off, concurrency {CONCURRENCY}) | {args.requests} in {seconds:.0f} s |",
        f"| statuses | {', '.join(f'{n} x {code}' for code, n in sorted(statuses.items()))} |",
        f"| node RSS after {WARM_UP} warm-up requests | {after_warm_up:.0f} MB |",
        f"| node RSS at the end | {at_end:.0f} MB |",
        f"| growth after warm-up (goal < 10%) | {growth:+.1f}% |",
    ])
    print(body)
    document = RELIABILITY.read_text(encoding="utf-8") if RELIABILITY.exists() else "# Reliability\n"
    RELIABILITY.write_text(update_section(document, "soak", body, ["soak"]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
