"""bench.report: the BENCHMARKS.md section rewrite and the JSON report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bench.accuracy import Calls, Goal, Metric, SetResult
from bench.client import Timed
from bench.report import (
    RunInfo,
    new_document,
    placeholder,
    render_section,
    summary_lines,
    update_docs,
    update_section,
    write_json,
)
from shared_models.ocr import Line, OcrOptions, OcrResult

ORDER = ["sroie-lines", "sroie", "barcodes"]


class _Backend:
    name = "fake"

    def image(self, data: bytes, options: OcrOptions, filename: str = "image") -> Timed[OcrResult]:
        raise NotImplementedError

    def line(self, image: np.ndarray, options: OcrOptions) -> Timed[Line]:
        raise NotImplementedError


def _result(name: str = "sroie", value: float = 91.5) -> SetResult:
    calls = Calls(_Backend())
    calls.wall_ms["image"] = [10.0, 20.0, 30.0]
    metrics = [
        Metric("word_f1_case_blind", "word F1, case-blind", value, "", Goal(">=", 92.0), "raw ≈ 87"),
        Metric("cer", "CER (NFC, | = ।)", 2.0, "%", Goal("<=", 3.0)),
        Metric("bad", "no goal", math.inf, ""),
    ]
    return SetResult(name, 3, 40, "image", metrics, calls, {"x": math.nan}, [{"name": "a"}], ["per format: A 1/2"])


INFO = RunInfo("python -m bench accuracy --set sroie --limit 3", "in-process", "2026-01-01 00:00 UTC", "/d", 3)


def test_update_section_rewrites_only_its_own_section() -> None:
    document = new_document(ORDER) + "\nA footer someone wrote.\n"
    before_other = document.split("<!-- bench:barcodes -->")
    updated = update_section(document, "sroie", "### sroie\n\nnew body\n", ORDER)
    assert "new body" in updated
    assert updated.count("<!-- bench:sroie -->") == 1
    assert updated.count("<!-- /bench:sroie -->") == 1
    # Everything outside the sroie markers is unchanged, byte for byte.
    head, rest = document.split("<!-- bench:sroie -->")
    tail = rest.split("<!-- /bench:sroie -->")[1]
    new_head, new_rest = updated.split("<!-- bench:sroie -->")
    assert new_head == head
    assert new_rest.split("<!-- /bench:sroie -->")[1] == tail
    assert updated.split("<!-- bench:barcodes -->")[1] == before_other[1]
    assert placeholder("sroie-lines") in updated  # the section whose name starts with "sroie" is untouched
    # Idempotent.
    assert update_section(updated, "sroie", "### sroie\n\nnew body\n", ORDER) == updated


def test_update_section_inserts_missing_sections_in_order() -> None:
    document = "# B\n\n<!-- bench:barcodes -->\nx\n<!-- /bench:barcodes -->\n"
    updated = update_section(document, "sroie", "S", ORDER)
    assert updated.index("<!-- bench:sroie -->") < updated.index("<!-- bench:barcodes -->")
    appended = update_section("# B\n", "barcodes", "X", ORDER)
    assert appended == "# B\n\n<!-- bench:barcodes -->\nX\n<!-- /bench:barcodes -->\n"
    other = update_section("# B\n", "new-set", "N", ORDER)
    assert other.endswith("<!-- bench:new-set -->\nN\n<!-- /bench:new-set -->\n")


def test_new_document_has_every_section_in_order() -> None:
    document = new_document(ORDER)
    positions = [document.index(f"<!-- bench:{name} -->") for name in ORDER]
    assert positions == sorted(positions)
    assert document.startswith("# Benchmarks")


def test_render_section_table() -> None:
    body = render_section(_result(), INFO, "receipt")
    assert body.startswith("### sroie: ")
    assert "the first 3 of 40 (`--limit 3`) items" in body
    assert "| metric | ours | goal / anchor | ms per receipt (p50) | command |" in body
    row = next(line for line in body.splitlines() if line.startswith("| word F1"))
    assert row == (
        "| word F1, case-blind | 91.50 | ≥ 92 (not met); raw ≈ 87 | 20 | "
        "`python -m bench accuracy --set sroie --limit 3` |"
    )
    assert "| CER (NFC, \\| = ।) | 2.00% | ≤ 3 (met) |" in body  # pipes in cells are escaped
    assert "p95 29" in body
    assert body.endswith("\n- per format: A 1/2\n")


def test_update_docs_creates_then_updates(tmp_path: Path) -> None:
    path = tmp_path / "docs" / "BENCHMARKS.md"
    update_docs(path, "sroie", render_section(_result(), INFO, "receipt"), ORDER)
    first = path.read_text(encoding="utf-8")
    assert "91.50" in first
    assert placeholder("barcodes").strip() in first
    path.write_text(first.replace("# Benchmarks", "# Benchmarks (hand edit)"), encoding="utf-8")
    update_docs(path, "sroie", render_section(_result(value=93.0), INFO, "receipt"), ORDER)
    second = path.read_text(encoding="utf-8")
    assert "# Benchmarks (hand edit)" in second
    assert "93.00" in second
    assert "91.50" not in second
    assert "≥ 92 (met)" in second


def test_write_json_is_strict_json(tmp_path: Path) -> None:
    path = write_json(_result(), INFO, tmp_path / "reports")
    assert path == tmp_path / "reports" / "sroie.json"
    payload = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda c: (_ for _ in ()).throw(ValueError))
    assert payload["command"] == INFO.command
    assert payload["metrics"]["word_f1_case_blind"]["goal_met"] is False
    assert payload["metrics"]["bad"]["value"] is None  # infinity is not JSON
    assert payload["breakdown"]["x"] is None
    assert payload["timing"]["image"]["wall_ms_p50"] == 20.0
    assert payload["items"] == [{"name": "a"}]


def test_summary_lines() -> None:
    text = "\n".join(summary_lines(_result()))
    assert "== sroie: 3/40 items, 0 failed calls" in text
    assert "goal ≥ 92: NOT met" in text
    assert "p50 20 p95 29 (3 calls)" in text
