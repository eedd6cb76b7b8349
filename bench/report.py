"""Reports: the JSON file per set (``bench/reports/NAME.json``, git-ignored) and docs/BENCHMARKS.md.

docs/BENCHMARKS.md holds one section per set, fenced by ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``.
A run rewrites only the text between its own set's markers; everything else in the file is kept byte for byte.
A missing file is created with a placeholder section for every set; a missing section is inserted before the
next set's section in the canonical order (or appended).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.accuracy import SetResult
from bench.datasets import REPO_ROOT

DOCS_PATH = REPO_ROOT / "docs" / "BENCHMARKS.md"
REPORTS_DIR = REPO_ROOT / "bench" / "reports"

SET_TITLES: dict[str, str] = {
    "sroie-lines": "SROIE receipts, ground-truth line crops (one line per call)",
    "sroie": "SROIE receipts, whole scans and key fields",
    "barcodes": "Barcodes and QR codes (zxing blackbox photos)",
    "price_tags": "Japanese shelf price tags (crops and shelf photos)",
    "scene_text": "Scene-text word crops (IIIT5K, SVT)",
    "bengali_lines": "Bengali printed lines (synthetic)",
}

DOCS_HEADER = """# Benchmarks

Accuracy of the OCR pipeline on the development sets in `../shared/bench` (sources, licences and the suggested
metrics: that folder's README.md; the exact definitions the bench uses: the module docstrings under `bench/`).
Goals come from the same README. F1, precision, recall and 1 - NED are on a 0-100 scale; `%` marks a share of
items or an error rate. Timing is wall time per call on the machine that ran the command.

Each section is rewritten by the command in its table (`python -m bench accuracy --set NAME`); edit outside the
`<!-- bench:... -->` markers only. A run with `--limit` covers only the first N items; its section says so.
"""


@dataclass(frozen=True)
class RunInfo:
    """How a set was run, for the report and the docs."""

    command: str
    backend: str
    started_at: str
    data_dir: str
    limit: int | None
    url: str | None = None
    setup_ms: float | None = None


def _start(name: str) -> str:
    return f"<!-- bench:{name} -->"


def _end(name: str) -> str:
    return f"<!-- /bench:{name} -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def placeholder(name: str) -> str:
    """The body of a section that has not been measured yet."""
    return f"### {name}: {SET_TITLES.get(name, name)}\n\nNot measured yet: `python -m bench accuracy --set {name}`.\n"


def render_section(result: SetResult, info: RunInfo, call_unit: str) -> str:
    """The Markdown body of one set's section (without the markers)."""
    timing = result.calls.timing().get(result.primary_group, {})
    scope = (
        f"all {result.n_items}"
        if result.n_items == result.n_available
        else (f"the first {result.n_items} of {result.n_available} (`--limit {info.limit}`)")
    )
    errors = len(result.calls.errors)
    lines = [
        f"### {result.name}: {SET_TITLES.get(result.name, result.name)}",
        "",
        f"Measured {info.started_at}, {info.backend} backend, {scope} items, {errors} failed calls; "
        f"ms per {call_unit}: p50 {_ms(timing.get('wall_ms_p50'))}, p95 {_ms(timing.get('wall_ms_p95'))} (wall)"
        + (
            f", p50 {_ms(timing.get('server_ms_p50'))} (node's processing_time_ms)"
            if timing.get("server_ms_p50")
            else ""
        )
        + ".",
        "",
        f"| metric | ours | goal / anchor | ms per {call_unit} (p50) | command |",
        "|---|---|---|---|---|",
    ]
    p50 = _ms(result.p50_ms())
    for metric in result.metrics:
        goal = ""
        if metric.goal:
            goal = f"{metric.goal} ({'met' if metric.goal.met(metric.value) else 'not met'})"
        target = "; ".join(part for part in (goal, metric.anchor) if part)
        lines.append(
            f"| {_cell(metric.label)} | {metric.shown()} | {_cell(target)} | {p50} | `{_cell(info.command)}` |"
        )
    if result.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in result.notes)
    return "\n".join(lines) + "\n"


def update_section(document: str, name: str, body: str, order: Sequence[str]) -> str:
    """``document`` with the section of ``name`` replaced by ``body`` (inserted in ``order`` when absent)."""
    block = f"{_start(name)}\n{body.rstrip()}\n{_end(name)}"
    pattern = re.compile(re.escape(_start(name)) + r".*?" + re.escape(_end(name)), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: block, document, count=1)
    later = list(order)[list(order).index(name) + 1 :] if name in order else []
    for other in later:
        position = document.find(_start(other))
        if position >= 0:
            return document[:position] + block + "\n\n" + document[position:]
    return document.rstrip("\n") + "\n\n" + block + "\n"


def new_document(order: Sequence[str]) -> str:
    """A fresh BENCHMARKS.md with a placeholder section per set."""
    document = DOCS_HEADER
    for name in order:
        document = update_section(document, name, placeholder(name), order)
    return document


def update_docs(path: Path, name: str, body: str, order: Sequence[str]) -> None:
    """Rewrite only the section of ``name`` in the docs file (created when missing)."""
    document = path.read_text(encoding="utf-8") if path.exists() else new_document(order)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(update_section(document, name, body, order), encoding="utf-8")


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def write_json(result: SetResult, info: RunInfo, directory: Path) -> Path:
    """Write ``directory/NAME.json`` with the run metadata, metrics, timing, errors and per-item details."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    payload = {
        "command": info.command,
        "backend": info.backend,
        "url": info.url,
        "started_at": info.started_at,
        "data_dir": info.data_dir,
        "limit": info.limit,
        "backend_setup_ms": info.setup_ms,
        **result.as_dict(),
    }
    path.write_text(json.dumps(_finite(payload), indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def summary_lines(result: SetResult) -> list[str]:
    """The plain-text figures the CLI prints for one set."""
    out = [f"== {result.name}: {result.n_items}/{result.n_available} items, {len(result.calls.errors)} failed calls"]
    for metric in result.metrics:
        goal = ""
        if metric.goal:
            goal = f"   goal {metric.goal}: {'met' if metric.goal.met(metric.value) else 'NOT met'}"
        out.append(f"  {metric.label:<52} {metric.shown():>9}{goal}")
    out.extend(f"  {note}" for note in result.notes)
    for group, timing in result.calls.timing().items():
        server = ""
        if timing["server_ms_p50"] is not None:
            server = f", node p50 {_ms(timing['server_ms_p50'])} p95 {_ms(timing['server_ms_p95'])}"
        out.append(
            f"  ms per {group:<10} p50 {_ms(timing['wall_ms_p50'])} p95 {_ms(timing['wall_ms_p95'])}"
            f" ({timing['calls']} calls{server})"
        )
    for error in result.calls.errors[:5]:
        out.append(f"  error {error['item']}: {error['code']}: {error['message'][:160]}")
    if len(result.calls.errors) > 5:
        out.append(f"  ... {len(result.calls.errors) - 5} more errors in the JSON report")
    return out
