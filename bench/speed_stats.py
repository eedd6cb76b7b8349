"""Statistics of the speed benchmark: latency percentiles, throughput, ratios, peak RSS.

* Percentiles use ``bench.metrics.percentile`` (linear interpolation between closest ranks, NumPy's default).
* Throughput = successful requests / wall seconds from the first request sent to the last answer received.
* A ratio ``a / b`` is None when either side is missing or ``b`` is 0, so a system that was not run never
  produces a number.
* Peak RSS is the kernel's high-water mark of the resident set (``VmHWM`` in ``/proc/PID/status``), read while the
  process is still alive; it covers the whole life of the process, start-up included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.metrics import percentile


@dataclass(frozen=True)
class Latency:
    """Percentiles of one system's wall times on one set, in ms (None without a successful call)."""

    n: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the JSON report."""
        return asdict(self)


def summarize(values_ms: Sequence[float], errors: int = 0) -> Latency:
    """p50/p95/p99/mean of the successful calls' wall times."""
    if not values_ms:
        return Latency(0, errors, None, None, None, None)
    return Latency(
        n=len(values_ms),
        errors=errors,
        p50=percentile(values_ms, 50),
        p95=percentile(values_ms, 95),
        p99=percentile(values_ms, 99),
        mean=sum(values_ms) / len(values_ms),
    )


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are present; None for none."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    return percentile(present, 50) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def overhead_pct(through_api_ms: float | None, direct_ms: float | None) -> float | None:
    """How much longer a call through the API takes than the pipeline called directly, in percent."""
    share = ratio(through_api_ms, direct_ms)
    return None if share is None else 100 * (share - 1)


def throughput(completed: int, seconds: float) -> float | None:
    """Requests per second; None when nothing completed or no time passed."""
    return completed / seconds if completed and seconds > 0 else None


def parse_vm_hwm_mb(status_text: str) -> float | None:
    """``VmHWM`` (peak resident set) from the text of ``/proc/PID/status``, in MB (10^6 bytes)."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                unit = parts[2].lower() if len(parts) > 2 else "kb"
                factor = {"kb": 1024, "mb": 1024 * 1024}.get(unit, 1024)
                return int(parts[1]) * factor / 1e6
    return None


def peak_rss_mb(pid: int | None) -> float | None:
    """Peak RSS of a live process in MB, or None (no such process, or not Linux)."""
    if pid is None:
        return None
    try:
        return parse_vm_hwm_mb(Path(f"/proc/{pid}/status").read_text(encoding="utf-8"))
    except OSError:
        return None


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    """A number for the tables; 'n/a' when missing."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}{suffix}"
