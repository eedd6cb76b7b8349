"""Receipt extraction on the SROIE ground-truth lines in ../shared/bench/sroie (date, total, company).

Each NAME.lines.txt row is "x1,y1,x2,y2,x3,y3,x4,y4,TRANSCRIPT"; NAME.fields.json holds the labels. The GT dates
are normalised here by a deliberately small parser of their own (not the one under test).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from edge_node.pipeline.extract import extract_fields
from shared_models.ocr import BoundingBox, DocumentType, Line

SROIE = Path(__file__).resolve().parents[4].parent / "shared" / "bench" / "sroie"
# Floors a little under what the rules achieve on these 40 receipts (date 40/40, total 39/40, company 39/40),
# so a regression fails while the rules stay general (a held-out set is scored too).
FLOORS = {"date": 0.95, "total": 0.92, "company": 0.9}
_MONTHS = {
    m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)
}


def _gt_date(text: str) -> tuple[int, int, int]:
    """(year, month, day) of a SROIE GT date: 25/12/2018, 25-12-18, 2018-12-25, 25 DEC 2018, 15/APR/2017."""
    text = text.strip().upper()
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
        return int(m[1]), int(m[2]), int(m[3])
    if m := re.fullmatch(r"(\d{1,2})[/-](\d{1,2})[/-](\d{2,4})", text):
        first, second, year = int(m[1]), int(m[2]), int(m[3])
        year += 2000 if year < 100 else 0
        return (year, first, second) if second > 12 else (year, second, first)
    if m := re.fullmatch(r"(\d{1,2})[ /-]([A-Z]{3})[A-Z]*[ /-](\d{2,4})", text):
        year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
        return year, _MONTHS[m[2]], int(m[1])
    raise ValueError(f"unexpected GT date {text!r}")


def _load_lines(path: Path) -> list[Line]:
    lines: list[Line] = []
    for row in path.read_text(encoding="utf-8").splitlines():
        parts = row.split(",", 8)
        if len(parts) < 9 or not parts[8].strip():
            continue
        xs, ys = [int(v) for v in parts[0:8:2]], [int(v) for v in parts[1:8:2]]
        box = BoundingBox(x=min(xs), y=min(ys), width=max(xs) - min(xs), height=max(ys) - min(ys))
        lines.append(Line(text=parts[8], confidence=0.95, bounding_box=box, engine="gt"))
    return lines


def _collapse(text: str) -> str:
    return " ".join(text.upper().split())


def _receipts() -> list[str]:
    if not SROIE.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"SROIE ground truth missing at {SROIE}")
        pytest.skip(f"SROIE ground truth not present at {SROIE}")
    return sorted(p.name.removesuffix(".fields.json") for p in SROIE.glob("*.fields.json"))


def test_gt_date_parser_is_independent_and_sane() -> None:
    assert _gt_date("25/12/2018") == (2018, 12, 25)
    assert _gt_date("12/13/2016") == (2016, 12, 13)
    assert _gt_date("2018-12-25") == (2018, 12, 25)
    assert _gt_date("15/APR/2017") == (2017, 4, 15)
    assert _gt_date("24-MAR-2018") == (2018, 3, 24)
    assert _gt_date("21-05-17") == (2017, 5, 21)


def test_sroie_ground_truth_lines() -> None:
    names = _receipts()
    assert names, "no SROIE receipts found"
    hits = {"date": 0, "total": 0, "company": 0}
    misses: list[str] = []
    for name in names:
        truth = json.loads((SROIE / f"{name}.fields.json").read_text(encoding="utf-8"))
        fields = extract_fields(DocumentType.RECEIPT, _load_lines(SROIE / f"{name}.lines.txt"), [])
        got_date = tuple(int(v) for v in fields.date.split("-")) if fields.date else None
        results = {
            "date": got_date == _gt_date(truth["date"]),
            "total": fields.total is not None
            and abs(fields.total - float(re.sub(r"[^\d.]", "", truth["total"]))) < 0.005,
            "company": fields.merchant is not None and _collapse(fields.merchant) == _collapse(truth["company"]),
        }
        for key, ok in results.items():
            hits[key] += ok
            if not ok:
                misses.append(f"{name} {key}: got {fields.date, fields.total, fields.merchant}, want {truth[key]!r}")
    rates = {key: hits[key] / len(names) for key in hits}
    for key, floor in FLOORS.items():
        assert rates[key] >= floor, f"{key} {rates[key]:.1%} < {floor:.0%}\n" + "\n".join(misses)
