"""The measuring loops of the speed benchmark: sequential latency (all systems interleaved per image), throughput
at a given concurrency, and cache hits.

Latency: for every pass and every image, each system that supports the image's type is called once, one after
the other, in an order rotated by the image's index, so that a burst of load from elsewhere on the machine hits
every system alike. Only one call is in flight at a time. The first pass's answers are the ones scored.

Throughput: ``rounds`` copies of the set are sent by ``concurrency`` client threads, each taking the next image
as soon as its previous answer came back; requests/s = answered requests / wall time of the whole burst.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.speed_score import ItemScore, Reading, score_item
from bench.speed_sets import SpeedItem, SpeedSet
from bench.speed_stats import Latency, median, summarize
from bench.speed_systems import Answer, System

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    """Progress lines for a person watching the run."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class SystemRun:
    """One system's calls on one set."""

    wall_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    scores: list[ItemScore] = field(default_factory=list)
    by_item: dict[str, list[float]] = field(default_factory=dict)

    def latency(self) -> Latency:
        """Percentiles of the wall times."""
        return summarize(self.wall_ms, len(self.errors))

    def stage_medians(self) -> dict[str, float | None]:
        """Median time of each pipeline stage the system reported."""
        return {name: median(values) for name, values in self.stages.items()}

    def record(self, item: SpeedItem, wall_ms: float, answer: Answer, score: bool) -> None:
        """Keep one successful call."""
        self.wall_ms.append(wall_ms)
        self.by_item.setdefault(item.name, []).append(wall_ms)
        if answer.server_ms is not None:
            self.server_ms.append(float(answer.server_ms))
        for name, value in answer.stages.items():
            self.stages.setdefault(name, []).append(float(value))
        if score:
            self.scores.append(score_item(item, answer.reading))


def timed_call(system: System, item: SpeedItem) -> tuple[float, Answer]:
    """(wall ms, answer) of one call."""
    start = time.perf_counter()
    answer = system.call(item)
    return (time.perf_counter() - start) * 1000, answer


def measure_latency(
    speed_set: SpeedSet, systems: Sequence[System], passes: int, progress: Progress | None = None
) -> dict[str, SystemRun]:
    """Sequential calls, all systems interleaved per image; keyed by system name."""
    active = [system for system in systems if system.supports(speed_set.doc_type)]
    runs = {system.name: SystemRun() for system in active}
    for pass_number in range(passes):
        for index, item in enumerate(speed_set.items):
            shift = index % len(active) if active else 0
            for system in [*active[shift:], *active[:shift]]:
                run = runs[system.name]
                try:
                    wall_ms, answer = timed_call(system, item)
                except Exception as err:  # any failure is counted and shown, never fatal
                    run.errors.append(f"{item.name}: {type(err).__name__}: {err}"[:300])
                    if pass_number == 0:  # a failed call reads nothing: a miss, not a skipped image
                        run.scores.append(score_item(item, Reading(reads_barcodes=system.reads_barcodes)))
                    continue
                run.record(item, wall_ms, answer, score=pass_number == 0)
        if progress is not None:
            progress(f"  {speed_set.key}: pass {pass_number + 1}/{passes} done")
    return runs


@dataclass(frozen=True)
class Burst:
    """One throughput measurement."""

    concurrency: int
    requests: int
    completed: int
    seconds: float
    latency: Latency

    @property
    def per_second(self) -> float | None:
        """Answered requests per second."""
        return self.completed / self.seconds if self.completed and self.seconds > 0 else None


def measure_throughput(system: System, items: Sequence[SpeedItem], concurrency: int, rounds: int) -> Burst:
    """``rounds`` copies of ``items`` through ``concurrency`` client threads."""
    work = [item for _ in range(rounds) for item in items]
    times: list[float] = []

    def one(item: SpeedItem) -> bool:
        try:
            wall_ms, _answer = timed_call(system, item)
        except Exception:
            return False
        times.append(wall_ms)
        return True

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="speed-client") as pool:
        done = sum(pool.map(one, work))
    seconds = time.perf_counter() - start
    return Burst(concurrency, len(work), done, seconds, summarize(times, len(work) - done))


def measure_cache_hits(system: System, item: SpeedItem, repeats: int) -> Latency:
    """One call to fill the cache, then ``repeats`` calls of the same image one after another."""
    timed_call(system, item)
    times = []
    errors = 0
    for _ in range(repeats):
        try:
            wall_ms, _answer = timed_call(system, item)
        except Exception:
            errors += 1
            continue
        times.append(wall_ms)
    return summarize(times, errors)


def paired_overhead_pct(api: SystemRun, direct: SystemRun) -> float | None:
    """Median over images of (API wall / direct wall) - 1, in percent: each pair was measured back to back."""
    ratios: list[float] = []
    for name, api_times in api.by_item.items():
        direct_times = direct.by_item.get(name)
        if direct_times:
            ratios.extend(a / d for a, d in zip(api_times, direct_times, strict=False) if d > 0)
    share = median(ratios)
    return None if share is None else 100 * (share - 1)
