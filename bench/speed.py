"""``python -m bench speed``: latency, throughput, memory and start-up of the node against a real ``edge-node serve``
process, side by side in the same run with the raw engines and a peer OCR server, on the same images.

What runs (definitions of each loop: ``bench/speed_runs.py``; the sets: ``bench/speed_sets.py``; the accuracy
scores: ``bench/speed_score.py``):

1. Our node (``EdgeProcess``, rate limits off, result cache off, default engines and workers), the peer
   (rapidocr-api from ``bench/.peer-venv``, see ``bench/speed_peer.py``; "not installed" when absent), and in this
   process our pipeline called directly, ``RapidOCR()`` with its defaults, a loaded ``PyTessBaseAPI`` and
   zxing-cpp.
2. Latency: every image of every set through every system that reads its type, interleaved, ``--passes`` times;
   p50/p95/p99 of the wall time around each call (upload and JSON included for the servers).
3. Throughput on the price-tag crops at each ``--concurrency`` level, ours and the peer alternating level by level.
4. Peak RSS (``VmHWM``) of the node and the peer after all of that.
5. Cache hits: a second node with the cache on; one price-tag crop posted once, then ``--cache-repeats`` times.
6. Cold start: process start to ``/health`` answering 200, for each node start of the run (median shown).

``--variant NAME:KEY=VALUE,...`` adds another node with those ``EDGE_*`` settings to steps 2-4 (for example
``--variant 1thread:EDGE_OCR__ONNX_THREADS=1``) so that settings are compared in the same run.
Figures are printed, written to ``bench/reports/speed.json`` and to the ``speed`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.datasets import DEFAULT_DATA_DIR
from bench.report import DOCS_PATH, REPORTS_DIR, update_docs
from bench.speed_peer import PEER_VENV, PeerProcess, peer_python, setup_peer
from bench.speed_report import OURS, OURS_DIRECT, PEER, render_markdown, render_text
from bench.speed_runs import (
    Burst,
    Progress,
    SystemRun,
    measure_cache_hits,
    measure_latency,
    measure_throughput,
    stderr_progress,
)
from bench.speed_score import SetAccuracy, aggregate
from bench.speed_sets import SpeedSet, build_sets
from bench.speed_stats import Latency, median, peak_rss_mb
from bench.speed_systems import OursDirect, OursHttp, PeerHttp, RawRapid, RawTesseract, RawZxing, System

if TYPE_CHECKING:
    from bench.node_process import EdgeProcess

SECTION = "speed"
DEFAULT_COUNTS = {"price_tags": 30, "barcodes": 40, "product": 8, "receipts": 10}
DEFAULT_CONCURRENCY = (1, 2, 4, 8)
#: The node under test: results must be computed (cache off) and a burst from one user must not hit quotas.
NODE_ENV = {
    "EDGE_RATE_LIMIT_USER_PER_MIN": "0",
    "EDGE_RATE_LIMIT_SHOP_PER_HOUR": "0",
    "EDGE_CACHE__ENABLED": "false",
    "EDGE_WORKER__SOFT_QUEUE_LIMIT": "1000",
    "EDGE_WORKER__HARD_QUEUE_LIMIT": "1000",
    # EdgeProcess pins 2 workers; the node's default is one per core.
    "EDGE_WORKER__WORKERS": str(os.cpu_count() or 1),
}


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("counts must be >= 0")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError("--concurrency takes numbers separated by commas, e.g. 1,2,4,8") from err
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("--concurrency needs levels of at least 1")
    return levels


def parse_env_pairs(text: str) -> dict[str, str]:
    """``KEY=VALUE,KEY=VALUE`` -> dict; keys must look like environment names."""
    pairs: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "").isalnum():
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {part!r}")
        pairs[key] = value.strip()
    return pairs


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``NAME:KEY=VALUE,...`` -> (name, settings)."""
    name, sep, rest = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE,..., got {text!r}")
    return name.strip(), parse_env_pairs(rest)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``speed`` subcommand's options."""
    parser.add_argument("--setup-peer", action="store_true",
                        help=f"Create {PEER_VENV.relative_to(PEER_VENV.parent.parent)} with rapidocr-api and exit.")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="Benchmark data folder.")
    parser.add_argument("--price-tags", type=_count, default=DEFAULT_COUNTS["price_tags"], help="Price-tag crops.")
    parser.add_argument("--barcodes", type=_count, default=DEFAULT_COUNTS["barcodes"], help="Barcode photos.")
    parser.add_argument("--product", type=_count, default=DEFAULT_COUNTS["product"], help="1280x720 photos.")
    parser.add_argument("--receipts", type=_count, default=DEFAULT_COUNTS["receipts"], help="SROIE receipts.")
    parser.add_argument("--passes", type=_positive, default=2, help="Latency passes over each set.")
    parser.add_argument("--concurrency", type=_levels, default=DEFAULT_CONCURRENCY, help="Throughput levels.")
    parser.add_argument("--rounds", type=_positive, default=2, help="Copies of the price-tag set per level.")
    parser.add_argument("--cache-repeats", type=_positive, default=30, help="Cache-hit calls.")
    parser.add_argument("--node-env", type=parse_env_pairs, action="append", default=[],
                        metavar="KEY=VALUE,...", help="EDGE_* settings for our node (and the direct pipeline).")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[], metavar="NAME:KEY=VALUE,...",
                        help="Another node with these settings, measured side by side.")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="Also run a node from another source tree (e.g. an older checkout), side by side.")
    parser.add_argument("--profile", action="store_true",
                        help="Only profile price-tag requests in-process (pyinstrument) and print where the time goes.")
    parser.add_argument("--profile-tree", type=Path, metavar="DIR",
                        help="With --profile: also profile the code of another source tree (the 'before').")
    parser.add_argument("--no-peer", action="store_true", help="Skip rapidocr-api.")
    parser.add_argument("--no-raw", action="store_true", help="Skip the raw engines.")
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR, help="Folder for speed.json.")
    parser.add_argument("--docs", type=Path, default=DOCS_PATH, help="The Markdown file to update.")
    parser.add_argument("--no-docs", action="store_true", help="Do not touch the Markdown file.")
    parser.add_argument("--quiet", action="store_true", help="No progress lines on stderr.")


@dataclass
class SpeedReport:
    """Everything one run measured."""

    command: str
    started_at: str
    machine: str
    sets: list[SpeedSet]
    systems: list[str]
    peer_status: str
    latency: dict[str, dict[str, SystemRun]] = field(default_factory=dict)
    accuracy: dict[str, dict[str, SetAccuracy]] = field(default_factory=dict)
    throughput: dict[str, list[Burst]] = field(default_factory=dict)
    peak_rss_mb: dict[str, float | None] = field(default_factory=dict)
    cold_start_s: dict[str, list[float]] = field(default_factory=dict)
    cache_hit: Latency | None = None
    node_env: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "command": self.command,
            "started_at": self.started_at,
            "machine": self.machine,
            "seconds": round(self.seconds, 1),
            "peer": self.peer_status,
            "node_env": self.node_env,
            "sets": {s.key: {"title": s.title, "type": s.doc_type, "items": len(s.items)} for s in self.sets},
            "latency_ms": {
                key: {
                    name: {**run.latency().as_dict(), "server_ms_p50": median(run.server_ms),
                           "stages_p50": run.stage_medians(), "errors": run.errors[:10]}
                    for name, run in runs.items()
                }
                for key, runs in self.latency.items()
            },
            "accuracy": {
                key: {name: vars(acc) for name, acc in by_system.items()} for key, by_system in self.accuracy.items()
            },
            "throughput": {
                name: [{"concurrency": b.concurrency, "requests": b.requests, "completed": b.completed,
                        "seconds": b.seconds, "per_second": b.per_second, **b.latency.as_dict()} for b in bursts]
                for name, bursts in self.throughput.items()
            },
            "peak_rss_mb": self.peak_rss_mb,
            "cold_start_s": self.cold_start_s,
            "cache_hit_ms": self.cache_hit.as_dict() if self.cache_hit else None,
        }


def machine_line() -> str:
    """Cores and load, so a reader can judge the figures."""
    try:
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        load = "n/a"
    return f"{os.cpu_count()} cores, {platform.machine()}, load average at start {load}"


def _start_node(root: Path, name: str, env: dict[str, str], cold: dict[str, list[float]]) -> EdgeProcess:
    from bench.node_process import EdgeProcess

    node = EdgeProcess(root / name, int(env["EDGE_WORKER__WORKERS"]), **env)
    cold.setdefault("ours", []).append(node.start(timeout=120))
    return node


def run_speed(args: argparse.Namespace, command: str, progress: Progress | None) -> SpeedReport:
    """Run every measurement; the caller renders and stores the report."""
    from bench.node_process import EdgeProcess

    started = time.monotonic()
    counts = {"price_tags": args.price_tags, "barcodes": args.barcodes, "product": args.product,
              "receipts": args.receipts}
    sets = build_sets(args.data, counts)
    node_env = {**NODE_ENV}
    for pairs in args.node_env:
        node_env.update(pairs)
    python = None if args.no_peer else peer_python()
    peer_status = "skipped (--no-peer)" if args.no_peer else (
        "installed" if python else "not installed (`python -m bench speed --setup-peer` installs it)"
    )
    if python is None and not args.no_peer and progress:
        progress(f"rapidocr-api is not installed in {PEER_VENV}: reported as such; "
                 "`python -m bench speed --setup-peer` installs it")
    report = SpeedReport(command, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), machine_line(), sets,
                         [], peer_status, node_env={k: v for k, v in node_env.items() if k not in NODE_ENV})
    nodes: dict[str, EdgeProcess] = {}
    peer: PeerProcess | None = None
    with tempfile.TemporaryDirectory(prefix="zakpos-speed-") as tmp:
        root = Path(tmp)
        try:
            nodes[OURS] = _start_node(root, "ours", node_env, report.cold_start_s)
            if args.baseline is not None:
                # `python -m edge_node` resolves the package from the working directory first: that tree's code.
                baseline = EdgeProcess(root / "baseline", int(node_env["EDGE_WORKER__WORKERS"]),
                                       wrapper=["env", f"--chdir={args.baseline.resolve()}"], **node_env)
                baseline.start(timeout=120)
                nodes[f"ours [baseline {args.baseline.name}]"] = baseline
            for name, settings in args.variant:
                variant_env = {**node_env, **settings}
                nodes[f"ours [{name}]"] = EdgeProcess(
                    root / f"variant-{len(nodes)}", int(variant_env["EDGE_WORKER__WORKERS"]), **variant_env
                )
                nodes[f"ours [{name}]"].start(timeout=120)
            if python is not None:
                peer = PeerProcess(python, root / "peer.log")
                report.cold_start_s["peer"] = [peer.start()]
            systems = _systems(args, nodes, peer, node_env, progress)
            report.systems = [system.name for system in systems]
            for speed_set in sets:
                if progress:
                    progress(f"latency: {speed_set.key} ({len(speed_set.items)} images x {args.passes} passes)")
                report.latency[speed_set.key] = measure_latency(speed_set, systems, args.passes, progress)
                report.accuracy[speed_set.key] = {
                    system.name: aggregate(speed_set.key, report.latency[speed_set.key][system.name].scores,
                                           system.reads_text, system.reads_barcodes)
                    for system in systems if system.name in report.latency[speed_set.key]
                }
            tags = next((s for s in sets if s.key == "price_tags"), None)
            if tags is not None and tags.items:
                servers = [s for s in systems if s.kind in ("ours-api", "peer")]
                for level in args.concurrency:
                    for system in servers:
                        if progress:
                            progress(f"throughput: {system.name} at concurrency {level}")
                        burst = measure_throughput(system, tags.items, level, args.rounds)
                        report.throughput.setdefault(system.name, []).append(burst)
            for name, node in nodes.items():
                report.peak_rss_mb[name] = peak_rss_mb(node.process.pid if node.process else None)
            if peer is not None:
                report.peak_rss_mb[PEER] = peak_rss_mb(peer.pid)
                peer.stop()
            for name, node in list(nodes.items()):
                if name != OURS:
                    node.kill()
            report.cache_hit = _cache_hits(root, node_env, tags, args.cache_repeats, report, progress)
            # One more cold start of the main node (files now in the page cache, as after a reboot of the app).
            nodes[OURS].kill()
            report.cold_start_s["ours"].append(nodes[OURS].start(timeout=120))
        finally:
            for node in nodes.values():
                node.kill()
            if peer is not None:
                peer.stop()
    report.seconds = time.monotonic() - started
    return report


def _systems(
    args: argparse.Namespace, nodes: dict[str, EdgeProcess], peer: PeerProcess | None, node_env: dict[str, str],
    progress: Progress | None,
) -> list[System]:
    systems: list[System] = [OursHttp(name, node.url, node.token()) for name, node in nodes.items()]
    if progress:
        progress("loading the in-process engines (direct pipeline, raw engines)")
    systems.append(OursDirect(OURS_DIRECT, {**os.environ, **node_env}))
    if peer is not None:
        systems.append(PeerHttp(PEER, peer.url))
    if not args.no_raw:
        systems.extend([RawRapid(), RawTesseract(), RawZxing()])
    return systems


def _cache_hits(
    root: Path, node_env: dict[str, str], tags: SpeedSet | None, repeats: int, report: SpeedReport,
    progress: Progress | None,
) -> Latency | None:
    if tags is None or not tags.items:
        return None
    if progress:
        progress("cache hits (a second node, cache on)")
    node = _start_node(root, "cache", {**node_env, "EDGE_CACHE__ENABLED": "true"}, report.cold_start_s)
    try:
        return measure_cache_hits(OursHttp("cache", node.url, node.token()), tags.items[0], repeats)
    finally:
        node.kill()


def main(args: argparse.Namespace, argv: Sequence[str], command: str) -> int:
    """Entry point of the subcommand; returns the exit status."""
    if args.setup_peer:
        return setup_peer()
    if not args.data.is_dir():
        print(f"benchmark data folder not found: {args.data}")
        return 2
    if args.profile:
        from bench.speed_profile import profile_in_process, profile_tree, render

        count = args.price_tags or DEFAULT_COUNTS["price_tags"]
        before = profile_tree(args.profile_tree, args.data, count) if args.profile_tree else None
        print(render(before, profile_in_process(args.data, count), "this tree"))
        return 0
    report = run_speed(args, command, None if args.quiet else stderr_progress)
    print(render_text(report))
    args.reports.mkdir(parents=True, exist_ok=True)
    path = args.reports / "speed.json"
    path.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    print(f"report: {path}")
    if not args.no_docs:
        from bench.sets import SETS

        update_docs(args.docs, SECTION, render_markdown(report), [*SETS, "queue", SECTION])
        print(f"docs:   {args.docs} (section {SECTION})")
    failed = any(run.errors and not run.wall_ms for runs in report.latency.values() for run in runs.values())
    return 1 if failed else 0
