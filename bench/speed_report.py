"""The speed benchmark's report: the targets table, latency and accuracy per set and system, ratios, throughput,
stage times, memory and start-up, as Markdown (printed, and written to the ``speed`` section of
docs/BENCHMARKS.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.speed_runs import paired_overhead_pct
from bench.speed_stats import fmt, median, ratio

if TYPE_CHECKING:
    from bench.speed import SpeedReport

OURS = "ours (API)"
OURS_DIRECT = "ours (pipeline called directly)"
PEER = "rapidocr-api (peer)"
RAW_RAPID = "raw RapidOCR()"
RAW_TESS = "raw tesserocr"
STAGES = ("decode", "barcodes", "detect", "recognize", "extract")
TARGET_CONCURRENCY = 4


@dataclass(frozen=True)
class Target:
    """One goal of the speed issue: a figure, how it is bounded, and how to read it from a report."""

    label: str
    bound: float
    higher_is_better: bool
    unit: str
    value: Callable[[SpeedReport], float | None]
    digits: int = 0

    def shown_bound(self) -> str:
        """'<= 59 ms' or '>= 1.5x'."""
        return f"{'>=' if self.higher_is_better else '<='} {self.bound:g}{self.unit}"

    def met(self, value: float | None) -> str:
        """'met', 'NOT met' or 'n/a'."""
        if value is None:
            return "n/a"
        ok = value >= self.bound if self.higher_is_better else value <= self.bound
        return "met" if ok else "NOT met"


def p50(report: SpeedReport, set_key: str, system: str = OURS) -> float | None:
    """p50 wall ms of a system on a set."""
    run = report.latency.get(set_key, {}).get(system)
    return run.latency().p50 if run else None


def throughput_at(report: SpeedReport, system: str, level: int) -> float | None:
    """Requests/s of a system at a concurrency level."""
    return next((b.per_second for b in report.throughput.get(system, []) if b.concurrency == level), None)


def overhead(report: SpeedReport, set_key: str) -> float | None:
    """API overhead over the direct pipeline on a set, percent (paired median)."""
    runs = report.latency.get(set_key, {})
    if OURS not in runs or OURS_DIRECT not in runs:
        return None
    return paired_overhead_pct(runs[OURS], runs[OURS_DIRECT])


def _cold_start(report: SpeedReport) -> float | None:
    return median(report.cold_start_s.get("ours", []))


def _rss(report: SpeedReport) -> float | None:
    return report.peak_rss_mb.get(OURS)


TARGETS = (
    Target("price-tag crop, p50 through the API", 59, False, " ms", lambda r: p50(r, "price_tags")),
    Target("barcode photo (type=barcode), p50", 15, False, " ms", lambda r: p50(r, "barcodes")),
    Target("1280x720 product photo, p50", 250, False, " ms", lambda r: p50(r, "product")),
    Target("SROIE receipt, p50", 800, False, " ms", lambda r: p50(r, "receipts")),
    Target("cache hit, p50", 5, False, " ms", lambda r: r.cache_hit.p50 if r.cache_hit else None, 1),
    Target(
        f"throughput at concurrency {TARGET_CONCURRENCY}, ours / rapidocr-api (price tags)", 1.5, True, "x",
        lambda r: ratio(throughput_at(r, OURS, TARGET_CONCURRENCY), throughput_at(r, PEER, TARGET_CONCURRENCY)), 2,
    ),
    Target("API overhead over the pipeline called directly (price tags)", 10, False, "%",
           lambda r: overhead(r, "price_tags"), 1),
    Target("peak RSS of the node (default engines)", 400, False, " MB", _rss),
    Target("cold start to healthy (median of the run's starts)", 3, False, " s", _cold_start, 2),
)


def _accuracy_cell(report: SpeedReport, set_key: str, system: str) -> str:
    acc = report.accuracy.get(set_key, {}).get(system)
    if acc is None:
        return "n/a"
    text = f"{acc.label} {fmt(acc.value, 1, '%') if acc.value is not None else 'n/a'}"
    if acc.barcode_label:
        text += f"; {acc.barcode_label} {fmt(acc.barcode_value, 1, '%')}"
    return text


def _target_rows(report: SpeedReport) -> list[str]:
    rows = ["| figure | target | measured | |", "|---|---|---|---|"]
    for target in TARGETS:
        value = target.value(report)
        rows.append(f"| {target.label} | {target.shown_bound()} | {fmt(value, target.digits, target.unit)} | "
                    f"{target.met(value)} |")
    tags_ours = report.accuracy.get("price_tags", {}).get(OURS)
    tags_peer = report.accuracy.get("price_tags", {}).get(PEER)
    if tags_ours and tags_peer:
        rows.append(f"| ... with accuracy on the same crops (exact price): ours / peer | ours >= peer | "
                    f"{fmt(tags_ours.value, 1, '%')} / {fmt(tags_peer.value, 1, '%')} | "
                    f"{'met' if (tags_ours.value or 0) >= (tags_peer.value or 0) else 'NOT met'} |")
    return rows


def _latency_rows(report: SpeedReport) -> list[str]:
    rows = ["| set | system | p50 | p95 | p99 | calls | failed | accuracy on the same images |",
            "|---|---|---|---|---|---|---|---|"]
    for speed_set in report.sets:
        for name, run in report.latency.get(speed_set.key, {}).items():
            lat = run.latency()
            rows.append(f"| {speed_set.key} | {name} | {fmt(lat.p50)} | {fmt(lat.p95)} | {fmt(lat.p99)} | {lat.n} | "
                        f"{lat.errors} | {_accuracy_cell(report, speed_set.key, name)} |")
    return rows


def _ratio_rows(report: SpeedReport) -> list[str]:
    rows = ["| set | ours / rapidocr-api | ours / raw RapidOCR() | ours / raw tesserocr | API overhead vs direct |",
            "|---|---|---|---|---|"]
    for speed_set in report.sets:
        key = speed_set.key
        ours = p50(report, key)
        cells = [fmt(ratio(ours, p50(report, key, other)), 2, "x") for other in (PEER, RAW_RAPID, RAW_TESS)]
        rows.append(f"| {key} | {' | '.join(cells)} | {fmt(overhead(report, key), 1, '%')} |")
    return rows


def _throughput_rows(report: SpeedReport) -> list[str]:
    levels = sorted({b.concurrency for bursts in report.throughput.values() for b in bursts})
    if not levels:
        return ["No throughput measured (no price-tag crops)."]
    rows = ["| system | " + " | ".join(f"c={level}" for level in levels) + " |",
            "|---|" + "---|" * len(levels)]
    for name, bursts in report.throughput.items():
        by_level = {b.concurrency: b for b in bursts}
        cells = [fmt(by_level[level].per_second, 1) if level in by_level else "n/a" for level in levels]
        rows.append(f"| {name} | {' | '.join(cells)} |")
    if PEER in report.throughput:
        for name in report.throughput:
            if name.startswith("ours"):
                cells = [fmt(ratio(throughput_at(report, name, level), throughput_at(report, PEER, level)), 2, "x")
                         for level in levels]
                rows.append(f"| {name} / peer | {' | '.join(cells)} |")
    return rows


def _stage_rows(report: SpeedReport) -> list[str]:
    rows = ["| set | " + " | ".join(STAGES) + " | node processing_time_ms | wall through the API |",
            "|---|" + "---|" * (len(STAGES) + 2)]
    for speed_set in report.sets:
        run = report.latency.get(speed_set.key, {}).get(OURS)
        if run is None:
            continue
        stages = run.stage_medians()
        cells = [fmt(stages.get(stage), 1) for stage in STAGES]
        rows.append(f"| {speed_set.key} | {' | '.join(cells)} | {fmt(median(run.server_ms), 1)} | "
                    f"{fmt(run.latency().p50, 1)} |")
    return rows


def _resource_rows(report: SpeedReport) -> list[str]:
    rows = ["| process | peak RSS (VmHWM) | cold start to ready |", "|---|---|---|"]
    for name, rss in report.peak_rss_mb.items():
        starts = report.cold_start_s.get("peer" if name == PEER else "ours", []) if name in (OURS, PEER) else []
        shown = ", ".join(f"{s:.2f} s" for s in starts) or "n/a"
        rows.append(f"| {name} | {fmt(rss, 0, ' MB')} | {shown} |")
    return rows


def render_markdown(report: SpeedReport) -> str:
    """The ``speed`` section's body."""
    sizes = ", ".join(f"{s.key} {len(s.items)}" for s in report.sets)
    settings = ", ".join(f"{k}={v}" for k, v in report.node_env.items()) or "defaults"
    lines = [
        "### speed: latency, throughput, memory and start-up (real node process, side by side with the raw engines "
        "and rapidocr-api)",
        "",
        f"Measured {report.started_at} ({report.machine}); command: `{report.command}`; the run took "
        f"{report.seconds:.0f} s. Images: {sizes}; each latency figure covers every image of its set, all passes, "
        f"all systems interleaved image by image. Node settings: {settings} (rate limits and result cache off). "
        f"Peer: rapidocr-api {report.peer_status}. Definitions: `bench/speed.py` and the modules it names. "
        "The machine is shared with other work: compare figures of one run, not across runs.",
        "",
        *_target_rows(report),
        "",
        "Latency in ms (wall time around each call, one call at a time; servers: upload and JSON included):",
        "",
        *_latency_rows(report),
        "",
        "Ratios of p50 latency (below 1 = ours faster), and what the API adds to the pipeline called directly "
        "(median over images of the paired ratio):",
        "",
        *_ratio_rows(report),
        "",
        "Throughput on the price-tag crops, requests/s (client threads = concurrency):",
        "",
        *_throughput_rows(report),
        "",
        "Where the time goes in the node (p50 of each stage's ms, from the answers' `stage_times_ms`):",
        "",
        *_stage_rows(report),
        "",
        *_resource_rows(report),
    ]
    return "\n".join(lines) + "\n"


def render_text(report: SpeedReport) -> str:
    """What the command prints: the same tables (Markdown reads well in a terminal)."""
    return render_markdown(report)
