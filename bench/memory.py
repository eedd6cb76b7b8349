"""Resident memory of a real node while it serves each speed set, one request at a time and then four at once.

`python -m bench.memory [--baseline DIR] [--node-env KEY=VALUE,...]`: starts `edge-node serve` (and, with
`--baseline`, a node from another source tree), sends every image of the speed sets (`bench.speed_sets`: price
tags, barcode photos, 1280x720 product photos, SROIE receipts) at concurrency 1, then again at concurrency 4, and
prints VmRSS (now, 1 s after the set: see SETTLE_SECONDS) and VmHWM (peak since start) of each node process after
each set. The two nodes are measured one after the other (peaks would otherwise compete for the same memory).
The speed harness reports one peak for the whole run; this shows which set and which concurrency make it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

import aiohttp

from bench.datasets import DEFAULT_DATA_DIR
from bench.node_process import EdgeProcess
from bench.speed_sets import SpeedItem, SpeedSet, build_sets

COUNTS = {"price_tags": 30, "barcodes": 40, "product": 8, "receipts": 10}
CONCURRENCY = (1, 4)
#: The node's settings: the speed harness's defaults (no cache, so every request really runs).
NODE_ENV = {"EDGE_CACHE__ENABLED": "false"}
#: Wait before reading RSS after a set: the node gives freed heap back once idle (`edge_node.idle_trim`, 0.5 s).
SETTLE_SECONDS = 1.0


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def _send(session: aiohttp.ClientSession, node: EdgeProcess, token: str, item: SpeedItem) -> None:
    form = aiohttp.FormData()
    form.add_field("image", item.data, filename=item.filename)
    form.add_field("type", item.doc_type)
    async with session.post(f"{node.url}/api/v1/ocr/process", data=form,
                            headers={"Authorization": f"Bearer {token}"}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{item.name}: HTTP {response.status}")


async def _limited(gate: asyncio.Semaphore, session: aiohttp.ClientSession, node: EdgeProcess, token: str,
                   item: SpeedItem) -> None:
    async with gate:
        await _send(session, node, token, item)


async def measure(node: EdgeProcess, sets: list[SpeedSet]) -> list[tuple[str, float, float]]:
    """Rows (step, RSS MB, peak MB): idle, then after each set at each concurrency."""
    assert node.process is not None
    pid = node.process.pid
    rows = [("idle after start", *memory_mb(pid))]
    token = node.token()
    async with aiohttp.ClientSession() as session:
        for concurrency in CONCURRENCY:
            gate = asyncio.Semaphore(concurrency)
            for speed_set in sets:
                await asyncio.gather(*(_limited(gate, session, node, token, item) for item in speed_set.items))
                await asyncio.sleep(SETTLE_SECONDS)
                rows.append((f"c={concurrency} after {speed_set.key}", *memory_mb(pid)))
    return rows


def _parse_env(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return dict(pair.split("=", 1) for pair in text.split(","))


def main(argv: list[str] | None = None) -> int:
    """Entry point: print a Markdown table per node."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="Benchmark data folder.")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="Also measure a node from this source tree.")
    parser.add_argument("--node-env", help="EDGE_* settings for the nodes, KEY=VALUE,...")
    args = parser.parse_args(argv)
    sets = build_sets(args.data, COUNTS)
    env = NODE_ENV | _parse_env(args.node_env)
    systems: list[tuple[str, list[str]]] = [("ours", [])]
    if args.baseline is not None:
        systems.append((f"baseline {args.baseline.name}", ["env", f"--chdir={args.baseline.resolve()}"]))
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as root:
        for name, wrapper in systems:
            node = EdgeProcess(Path(root) / name.replace(" ", "-"), 2, wrapper, **env)
            node.start(timeout=120)
            try:
                rows = asyncio.run(measure(node, sets))
            finally:
                with contextlib.suppress(OSError):
                    node.kill()
            sys.stdout.write(f"\n{name}\n\n| step | RSS MB | peak MB |\n|---|---|---|\n")
            for step, rss, peak in rows:
                sys.stdout.write(f"| {step} | {rss:.0f} | {peak:.0f} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
