"""Barcodes: decode rate and misread rate over the zxing blackbox photos, against zxing Java's own counts.

Each image goes through ``run_image`` (type=barcode, extract_barcodes=true). Per image:

* **decoded**: some returned barcode has the manifest's format (zxing names) and a value exactly equal to the
  ``.txt`` file's UTF-8 text (no trimming; UPC-A as 12 digits, UPC-E as 8, as zxing presents them).
* **misread**: some returned barcode's value is not the expected value (whatever its format). An image can be
  both decoded and misread (a right and a wrong code); a misread is counted against the node either way, since a
  POS that picks the wrong one sells the wrong product.
* **right value, wrong format**: not decoded, but a code with the expected value came back under another format.

Rates are shares of all images, overall, per format, per source set, and for the blurry (``ean13-5``,
``upca-6``) and reflective (``upca-3``, ``upce-3``) sets apart from the rest. The zxing comparison scales zxing
Java's pass rate for each set present to the number of images of that set here and sums: the bench holds about
half of each zxing set, so this is an estimate, not the same images.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.accuracy import Calls, Goal, Metric, SetResult, first
from bench.datasets import load_barcodes
from bench.metrics import ratio
from shared_models.ocr import DocumentType, OcrOptions

#: zxing Java's blackbox test expectations per set, at 0° rotation with try-harder: (passing images, images in the
#: set). Copied from ../shared/bench/README.md ("For reference, zxing Java's own tests expect these decode counts").
ZXING_JAVA_REFERENCE: dict[str, tuple[int, int]] = {
    "ean13-1": (32, 34),
    "ean13-2": (17, 28),
    "ean13-3": (55, 55),
    "ean13-4": (13, 22),
    "ean13-5": (0, 18),
    "upca-1": (18, 21),
    "upca-2": (36, 52),
    "upca-3": (9, 21),
    "upca-4": (11, 19),
    "upca-5": (23, 35),
    "upca-6": (0, 19),
    "upce-1": (3, 3),
    "upce-2": (35, 41),
    "upce-3": (8, 11),
    "ean8-1": (8, 8),
    "code128-1": (7, 7),
    "code128-2": (39, 40),
    "code128-3": (2, 2),
    "qrcode-1": (17, 20),
    "qrcode-2": (32, 35),
    "qrcode-3": (38, 42),
    "qrcode-4": (36, 48),
    "qrcode-5": (19, 19),
    "qrcode-6": (15, 15),
}
#: Deliberately blurry sets (zxing Java decodes none) and reflective ones, reported apart (README).
BLURRY_SETS = frozenset({"ean13-5", "upca-6"})
REFLECTIVE_SETS = frozenset({"upca-3", "upce-3"})


@dataclass(frozen=True)
class BarcodeOutcome:
    """How one image scored."""

    decoded: bool
    misread: bool
    wrong_format: bool


def score_barcode(expected_format: str, expected: str, returned: Iterable[tuple[str, str]]) -> BarcodeOutcome:
    """Score one image from the (format, value) pairs the node returned."""
    codes = list(returned)
    decoded = any(kind == expected_format and value == expected for kind, value in codes)
    misread = any(value != expected for _, value in codes)
    wrong_format = not decoded and any(value == expected for _, value in codes)
    return BarcodeOutcome(decoded, misread, wrong_format)


def condition(source_set: str) -> str:
    """'blurry', 'reflective' or 'other'."""
    if source_set in BLURRY_SETS:
        return "blurry"
    return "reflective" if source_set in REFLECTIVE_SETS else "other"


def _tally(groups: dict[str, dict[str, int]], key: str, outcome: BarcodeOutcome) -> None:
    row = groups.setdefault(key, {"images": 0, "decoded": 0, "misread": 0, "wrong_format": 0})
    row["images"] += 1
    row["decoded"] += outcome.decoded
    row["misread"] += outcome.misread
    row["wrong_format"] += outcome.wrong_format


def _with_rates(groups: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    return {
        key: {
            **row,
            "decode_rate": ratio(row["decoded"], row["images"]),
            "misread_rate": ratio(row["misread"], row["images"]),
        }
        for key, row in sorted(groups.items())
    }


def zxing_comparison(per_set: dict[str, dict[str, int]], kind: str | None = None) -> dict[str, Any]:
    """Our decoded count per set next to zxing Java's pass rate scaled to the images here; totals over the sets.

    ``kind`` ('blurry', 'reflective', 'other') keeps only the sets of that condition.
    """
    rows: dict[str, Any] = {}
    ours = images = 0
    expected = 0.0
    for name, row in sorted(per_set.items()):
        if name not in ZXING_JAVA_REFERENCE or (kind is not None and condition(name) != kind):
            continue
        passing, total = ZXING_JAVA_REFERENCE[name]
        scaled = row["images"] * passing / total
        rows[name] = {
            "images": row["images"],
            "decoded": row["decoded"],
            "zxing": f"{passing}/{total}",
            "zxing_scaled": scaled,
        }
        ours += row["decoded"]
        expected += scaled
        images += row["images"]
    return {
        "sets": rows,
        "images": images,
        "decoded": ours,
        "zxing_scaled": expected,
        "zxing_scaled_rate": 100 * expected / images if images else 0.0,
    }


def evaluate_barcodes(data_dir: Path, calls: Calls, limit: int | None) -> SetResult:
    """Decode and misread rates, per format / set / condition, and the zxing Java comparison."""
    images = load_barcodes(data_dir)
    chosen = first(images, limit)
    options = OcrOptions(type=DocumentType.BARCODE, extract_barcodes=True)
    total: dict[str, dict[str, int]] = {}
    per_format: dict[str, dict[str, int]] = {}
    per_set: dict[str, dict[str, int]] = {}
    per_condition: dict[str, dict[str, int]] = {}
    items = []
    for item in calls.track(chosen, "barcodes"):
        result = calls.image(item.name, item.image.read_bytes(), options, item.image.name)
        returned = [(code.type, code.value) for code in result.barcodes] if result else []
        outcome = score_barcode(item.format, item.expected, returned)
        _tally(total, "all", outcome)
        _tally(per_format, item.format, outcome)
        _tally(per_set, item.source_set, outcome)
        _tally(per_condition, condition(item.source_set), outcome)
        items.append(
            {
                "name": item.name,
                "format": item.format,
                "expected": item.expected,
                "returned": [{"type": kind, "value": value} for kind, value in returned],
                "decoded": outcome.decoded,
                "misread": outcome.misread,
            }
        )
    n = len(chosen)
    all_row = total.get("all", {"decoded": 0, "misread": 0})
    conditions = _with_rates(per_condition)
    zxing = zxing_comparison(per_set)

    def anchor(kind: str | None) -> str:
        scaled = zxing_comparison(per_set, kind)
        return f"zxing Java ≈ {scaled['zxing_scaled_rate']:.1f}% (its blackbox pass rates, scaled to these sets)"

    def rate(kind: str) -> float:
        return float(conditions.get(kind, {}).get("decode_rate", 0.0))

    metrics = [
        Metric(
            "decode_rate", "right value and format", ratio(all_row["decoded"], n), "%", Goal(">=", 86.0), anchor(None)
        ),
        Metric("misread_rate", "misread (a wrong value returned)", ratio(all_row["misread"], n), "%", Goal("<=", 1.0)),
        Metric(
            "decode_rate_other",
            "decode rate, sets neither blurry nor reflective",
            rate("other"),
            "%",
            None,
            anchor("other"),
        ),
        Metric(
            "decode_rate_blurry",
            "decode rate, blurry sets (ean13-5, upca-6)",
            rate("blurry"),
            "%",
            None,
            anchor("blurry"),
        ),
        Metric(
            "decode_rate_reflective",
            "decode rate, reflective sets (upca-3, upce-3)",
            rate("reflective"),
            "%",
            None,
            anchor("reflective"),
        ),
    ]
    formats = _with_rates(per_format)
    breakdown = {
        "per_format": formats,
        "per_set": _with_rates(per_set),
        "per_condition": conditions,
        "zxing_java": zxing,
    }
    notes = [
        "per format (decoded/images, misreads): "
        + ", ".join(f"{name} {row['decoded']}/{row['images']} ({row['misread']})" for name, row in formats.items()),
        "per set (decoded/images, zxing Java scaled): "
        + ", ".join(
            f"{name} {row['decoded']}/{row['images']} ({row['zxing_scaled']:.1f})"
            for name, row in zxing["sets"].items()
        ),
        f"decoded {zxing['decoded']} of {zxing['images']} images; zxing Java's pass rates scaled to the same sets: "
        f"{zxing['zxing_scaled']:.1f}",
    ]
    return SetResult("barcodes", n, len(images), "image", metrics, calls, breakdown, items, notes)
