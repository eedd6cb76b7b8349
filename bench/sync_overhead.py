"""How much OCR throughput the node loses while sync drains a backlog (target: under 5%).

    .venv/bin/python -m bench.sync_overhead [--jobs 100] [--backlog 10000] [--rounds 3] [--node-cores 1] [--json PATH]

Each round runs the node in this process (create_app, real engines, aiohttp test server) twice on a fresh data
dir: once with sync off, once with sync on and `--backlog` result rows (real result bodies) already in the
outbox, draining to an own Mosquitto on a free loopback port and a fake central (a subprocess that acks every
contiguous seq). In both runs `--jobs` distinct labels are POSTed to /api/v1/ocr/process, `--concurrency` at a
time; the result cache is off so every job really runs OCR. The process is pinned to `--node-cores` CPUs (the
shop box); Mosquitto and the fake central run on the other CPUs, as they run on other machines in a shop.

Two figures, medians over the rounds: jobs per second (wall clock; noisy on a shared machine) and jobs per CPU
second of the node process (OCR plus everything sync costs the node: the loss on a node OCR keeps busy).
`--json PATH` also writes the figures there (bench/sync_figures.py puts them into docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from PIL import Image, ImageDraw, ImageFont

from edge_node.app import create_app
from edge_node.auth import issue_token
from edge_node.config import EdgeConfig, load_config
from edge_node.engines.registry import EngineSet, build_engines
from edge_node.store import outbox as outbox_store
from edge_node.store.db import Database, transaction

SECRET = "bench-secret-that-is-long-enough-for-hs256"
SHOP = "shop-bench"
NODE = "node-bench"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#: Requests per user stay under the node's per-user rate limit (100/minute).
JOBS_PER_USER = 50


def label(number: int) -> bytes:
    """A distinct price label per job (distinct bytes: no cache hit, no idempotent repeat)."""
    face = ImageFont.truetype(FONT, 30)
    image = Image.new("RGB", (420, 150), "white")
    draw = ImageDraw.Draw(image)
    draw.text((20, 20), f"MILK 1L BATCH {number}", fill="black", font=face)
    draw.text((20, 80), f"Tk {number % 500 + 10}.00", fill="black", font=face)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def elsewhere(cores: set[int], nice: bool) -> Callable[[], None]:
    """For a child before exec: run on the cores the node does not use (in a shop: another machine)."""
    def apply() -> None:
        os.sched_setaffinity(0, cores)
        if nice:
            os.nice(19)
    return apply


def start_mosquitto(folder: Path, cores: set[int], nice: bool) -> tuple[subprocess.Popen[bytes], int]:
    """An own Mosquitto on a free loopback port; returns (process, port)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence true",
             f"persistence_location {folder}/"]
    if os.geteuid() == 0:
        lines.append("user root")
    (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = subprocess.Popen([binary, "-c", str(folder / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, preexec_fn=elsewhere(cores, nice))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("mosquitto did not start")


def start_central(port: int, cores: set[int], nice: bool) -> subprocess.Popen[bytes]:
    """The fake central in a subprocess (its CPU is not the node's GIL); returns once it is subscribed."""
    central = subprocess.Popen([sys.executable, "-m", "bench.sync_overhead", "--central", str(port)],
                               stdout=subprocess.PIPE, preexec_fn=elsewhere(cores, nice))
    assert central.stdout is not None
    central.stdout.readline()  # "central ready"
    return central


def run_central(port: int) -> None:
    """The fake central (subprocess mode): receive envelopes, ack the highest contiguous seq per node."""
    from datetime import UTC, datetime

    import paho.mqtt.client as paho

    from shared_models.messages import Ack, Envelope
    from shared_models.topics import ack_topic, central_subscription

    top: dict[str, int] = {}
    seen: dict[str, set[int]] = {}

    def on_connect(client: paho.Client, *_args: object) -> None:
        client.subscribe(central_subscription(), qos=1)
        print("central ready", flush=True)

    def on_message(client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        if message.topic.endswith("/status"):
            return
        envelope = Envelope.model_validate_json(message.payload)
        node = envelope.node_id
        pending = seen.setdefault(node, set())
        pending.add(envelope.seq)
        high = top.get(node, 0)
        while high + 1 in pending:
            high += 1
            pending.discard(high)
        top[node] = high
        ack = Ack(node_id=node, seq=high, acked_at=datetime.now(UTC))
        client.publish(ack_topic(envelope.shop_id, node), ack.model_dump_json(), qos=1)

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-central", protocol=paho.MQTTv5)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port, 30)
    client.loop_forever()


def node_config(data_dir: Path, node_id: str, cores: int, broker_port: int | None) -> EdgeConfig:
    environ = {
        "EDGE_STORAGE__DATA_DIR": str(data_dir),
        "EDGE_JWT_SECRET": SECRET,
        "EDGE_SHOP_ID": SHOP,
        "EDGE_NODE_ID": node_id,
        "EDGE_WORKER__WORKERS": str(cores),
        "EDGE_OCR__ONNX_THREADS": str(cores),
        "EDGE_CACHE__ENABLED": "false",
        "EDGE_STORAGE__STORE_IMAGES": "false",
    }
    if broker_port is not None:
        environ |= {"EDGE_SYNC__ENABLED": "true", "EDGE_SYNC__BROKER_URL": f"mqtt://127.0.0.1:{broker_port}"}
    return load_config(environ=environ)


def fill_backlog(path: Path, rows: int, body: dict[str, Any]) -> None:
    """`rows` result rows in the outbox, as if the node had been offline."""
    db = Database(path)

    def write(conn: Any) -> None:
        with transaction(conn):
            for number in range(rows):
                outbox_store.append(conn, "results", body | {"job_id": f"backlog-{number}"})

    db.run_sync(write)
    db.close()


def cpu_seconds() -> float:
    """CPU time of this process (every thread) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_jobs(config: EdgeConfig, engines: EngineSet, images: list[bytes], concurrency: int) -> dict[str, Any]:
    """POST every image through the node; returns rates and the outbox backlog before and after."""
    app = create_app(config, engines)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    tokens = [issue_token(SECRET, user_id=f"bench-{n}", shop_id=SHOP, ttl_seconds=3600, role="clerk")
              for n in range(len(images) // JOBS_PER_USER + 1)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(len(images)):
        queue.put_nowait(number)
    results: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:

        async def backlog() -> int:
            async with session.get(server.make_url("/api/v1/health")) as response:
                return int((await response.json())["data"]["sync"]["backlog"])

        async def worker() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                form = aiohttp.FormData()
                form.add_field("image", images[number], filename="label.png", content_type="image/png")
                headers = {"Authorization": f"Bearer {tokens[number // JOBS_PER_USER]}"}
                async with session.post(server.make_url("/api/v1/ocr/process"), data=form,
                                        headers=headers) as response:
                    body = await response.json()
                    if response.status != 200:
                        raise RuntimeError(f"job {number}: HTTP {response.status} {body}")
                    results.append(body["data"])

        await asyncio.sleep(1.0)  # let sync connect and start draining
        before = await backlog()
        started, cpu_started = time.perf_counter(), cpu_seconds()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
        after = await backlog()
    await server.close()
    return {"rate": len(images) / elapsed, "per_cpu": len(images) / cpu, "elapsed": elapsed, "cpu": cpu,
            "backlog_before": before, "backlog_after": after, "sample": results[0]}


def pin(cores: int) -> tuple[set[int], set[int]]:
    """Pin this process to the first `cores` CPUs; returns (node cores, the others for broker and central)."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) <= cores:
        return set(available), set(available)
    node, rest = set(available[:cores]), set(available[cores:])
    os.sched_setaffinity(0, node)
    return node, rest


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    node_cores, service_cores = pin(args.node_cores)
    print(f"node on CPUs {sorted(node_cores)}, Mosquitto and central on {sorted(service_cores)}; "
          f"{args.jobs} jobs per run, backlog {args.backlog}, {args.rounds} rounds", flush=True)
    engines = build_engines(node_config(Path("unused"), NODE, args.node_cores, None).ocr)
    images = [label(n) for n in range(args.jobs)]
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        root = Path(tmp)
        warm = await run_jobs(node_config(root / "warm", NODE, args.node_cores, None), engines, images[:10],
                              args.concurrency)
        body = {"shop_id": SHOP, "user_id": "bench", "document_type": "product", "status": "completed",
                "attempts": 1, "result": warm["sample"]}
        print(f"backlog rows: {len(json.dumps(body))} bytes of body each", flush=True)
        broker, port = start_mosquitto(root / "broker", service_cores, args.nice_services)
        central = start_central(port, service_cores, args.nice_services)
        off: list[dict[str, Any]] = []
        on: list[dict[str, Any]] = []
        try:
            for round_number in range(args.rounds):
                plain_config = node_config(root / f"off-{round_number}", NODE, args.node_cores, None)
                off.append(await run_jobs(plain_config, engines, images, args.concurrency))
                # A node id per run: the fake central remembers seqs per node, and each run starts from seq 1.
                config = node_config(root / f"on-{round_number}", f"{NODE}-{round_number}", args.node_cores, port)
                fill_backlog(config.storage.database_path, args.backlog, body)
                on.append(await run_jobs(config, engines, images, args.concurrency))
                plain, synced = off[-1], on[-1]
                print(f"round {round_number + 1}: sync off {plain['rate']:.2f} jobs/s "
                      f"({plain['per_cpu']:.2f} per CPU s); sync on {synced['rate']:.2f} jobs/s "
                      f"({synced['per_cpu']:.2f} per CPU s), backlog {synced['backlog_before']} -> "
                      f"{synced['backlog_after']} during the run", flush=True)
        finally:
            central.send_signal(signal.SIGTERM)
            central.wait()
            broker.send_signal(signal.SIGTERM)
            broker.wait()
    rate_off, rate_on = (statistics.median(run["rate"] for run in runs) for runs in (off, on))
    cpu_off, cpu_on = (statistics.median(run["per_cpu"] for run in runs) for runs in (off, on))
    print(f"sync off: {rate_off:.2f} jobs/s (median of {args.rounds}), {cpu_off:.2f} jobs per node CPU second")
    print(f"sync on, draining a {args.backlog}-row backlog: {rate_on:.2f} jobs/s, {cpu_on:.2f} jobs per CPU second")
    print(f"throughput ratio on/off: {rate_on / rate_off:.3f} (lost: {(1 - rate_on / rate_off) * 100:.1f}%)")
    print(f"CPU-efficiency ratio on/off: {cpu_on / cpu_off:.3f} (lost: {(1 - cpu_on / cpu_off) * 100:.1f}%; "
          "the loss on a node whose cores OCR keeps busy, whatever the scheduler does)")
    return {
        "jobs": args.jobs, "backlog": args.backlog, "rounds": args.rounds, "node_cores": args.node_cores,
        "concurrency": args.concurrency, "rate_off": round(rate_off, 3), "rate_on": round(rate_on, 3),
        "per_cpu_off": round(cpu_off, 3), "per_cpu_on": round(cpu_on, 3),
        "throughput_lost_pct": round((1 - rate_on / rate_off) * 100, 2),
        "cpu_efficiency_lost_pct": round((1 - cpu_on / cpu_off) * 100, 2),
        "rounds_detail": [
            {"rate_off": round(a["rate"], 3), "rate_on": round(b["rate"], 3), "per_cpu_off": round(a["per_cpu"], 3),
             "per_cpu_on": round(b["per_cpu"], 3), "backlog_before": b["backlog_before"],
             "backlog_after": b["backlog_after"]}
            for a, b in zip(off, on, strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="OCR jobs per run")
    parser.add_argument("--backlog", type=int, default=10_000, help="outbox rows waiting when the synced run starts")
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs (medians are reported)")
    parser.add_argument("--concurrency", type=int, default=3, help="requests in flight")
    parser.add_argument("--node-cores", type=int, default=1,
                        help="CPUs the node is pinned to (workers and ONNX threads match); the rest run Mosquitto "
                             "and the fake central, which in a shop run on other machines")
    parser.add_argument("--nice-services", action="store_true", help="also give Mosquitto and central nice 19")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--central", type=int, help=argparse.SUPPRESS)  # internal: run the fake central
    args = parser.parse_args()
    if args.central:
        run_central(args.central)
        return
    figures = asyncio.run(main_async(args))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
