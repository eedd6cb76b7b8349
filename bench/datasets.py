"""Loaders for the development benchmark data in ``../shared/bench`` (layout: that folder's README.md).

Every loader reads the set's ``manifest.csv`` (with the csv module: some values are quoted and span lines) and
returns items in manifest order; ``limit`` keeps the first N. Ground truth is read from the per-item files where
the README names them as authoritative (barcode ``.txt`` bytes, Bengali ``.gt.txt``, price ``.txt``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

#: The repository root (the folder holding ``bench/``); the default data folder is resolved from it, not the cwd.
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = (REPO_ROOT / ".." / "shared" / "bench").resolve()

Point = tuple[int, int]
Quad = tuple[Point, Point, Point, Point]


@dataclass(frozen=True)
class GtLine:
    """One ground-truth text line of a receipt: corners clockwise from top-left, and its transcript."""

    quad: Quad
    text: str


@dataclass(frozen=True)
class Receipt:
    """One SROIE receipt: the scan, its text lines and its four key fields."""

    name: str
    image: Path
    lines: tuple[GtLine, ...]
    fields: dict[str, str]


@dataclass(frozen=True)
class BarcodeImage:
    """One barcode photo with its expected format (zxing name) and exact decoded value."""

    name: str
    image: Path
    format: str
    expected: str
    source_set: str
    source_repo: str


@dataclass(frozen=True)
class PriceCrop:
    """One shelf price-tag crop and its price (digits)."""

    name: str
    image: Path
    price: str


@dataclass(frozen=True)
class Shelf:
    """One full shelf photo with the unordered list of its tag prices."""

    name: str
    image: Path
    prices: tuple[str, ...]


@dataclass(frozen=True)
class TextCrop:
    """One cropped line or word image with its transcript."""

    name: str
    image: Path
    text: str
    source_set: str


def _manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _first(rows: list[dict[str, str]], limit: int | None) -> list[dict[str, str]]:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    return rows if limit is None else rows[:limit]


def parse_lines_file(text: str) -> tuple[GtLine, ...]:
    """Parse a SROIE ``x1,y1,...,x4,y4,TRANSCRIPT`` file; the transcript may hold commas; blank rows are skipped."""
    lines = []
    for row in text.splitlines():
        if not row.strip():
            continue
        parts = row.split(",", 8)
        if len(parts) != 9:
            raise ValueError(f"not a SROIE line row: {row!r}")
        xy = [int(value) for value in parts[:8]]
        quad: Quad = ((xy[0], xy[1]), (xy[2], xy[3]), (xy[4], xy[5]), (xy[6], xy[7]))
        lines.append(GtLine(quad, parts[8]))
    return tuple(lines)


def load_sroie(data_dir: Path, limit: int | None = None) -> list[Receipt]:
    """The SROIE receipts (40)."""
    folder = data_dir / "sroie"
    receipts = []
    for row in _first(_manifest(folder), limit):
        name = row["name"]
        lines = parse_lines_file((folder / f"{name}.lines.txt").read_text(encoding="utf-8"))
        fields = json.loads((folder / f"{name}.fields.json").read_text(encoding="utf-8"))
        receipts.append(Receipt(name, folder / f"{name}.jpg", lines, {k: str(v) for k, v in fields.items()}))
    return receipts


def load_barcodes(data_dir: Path, limit: int | None = None) -> list[BarcodeImage]:
    """The barcode images (320); the expected value is the ``.txt`` file's bytes decoded as UTF-8, untouched."""
    folder = data_dir / "barcodes"
    items = []
    for row in _first(_manifest(folder), limit):
        image = folder / row["file"]
        expected = image.with_suffix(".txt").read_bytes().decode("utf-8")
        items.append(BarcodeImage(image.stem, image, row["format"], expected, row["source_set"], row["source_repo"]))
    return items


def load_price_crops(data_dir: Path, limit: int | None = None) -> list[PriceCrop]:
    """The price-tag crops (75)."""
    folder = data_dir / "price_tags"
    items = []
    for row in _first(_manifest(folder), limit):
        image = folder / row["file"]
        items.append(PriceCrop(image.stem, image, image.with_suffix(".txt").read_text(encoding="utf-8").strip()))
    return items


def load_shelves(data_dir: Path, limit: int | None = None) -> list[Shelf]:
    """The full shelf photos (3) with their price lists."""
    folder = data_dir / "price_tags" / "shelves"
    items = []
    for row in _first(_manifest(folder), limit):
        image = folder / row["file"]
        prices = json.loads((folder / f"{image.stem}.prices.json").read_text(encoding="utf-8"))["prices"]
        items.append(Shelf(image.stem, image, tuple(str(price) for price in prices)))
    return items


def load_scene_text(data_dir: Path, limit: int | None = None) -> list[TextCrop]:
    """The scene-text word crops (300) with their case-sensitive labels."""
    folder = data_dir / "scene_text"
    return [
        TextCrop(Path(row["file"]).stem, folder / row["file"], row["label"], row["source_set"])
        for row in _first(_manifest(folder), limit)
    ]


def load_bengali_lines(data_dir: Path, limit: int | None = None) -> list[TextCrop]:
    """The synthetic Bengali lines (40); the transcript is the ``.gt.txt`` without its trailing newline."""
    folder = data_dir / "bengali_lines"
    items = []
    for row in _first(_manifest(folder), limit):
        image = folder / row["file"]
        text = image.with_name(f"{image.stem}.gt.txt").read_text(encoding="utf-8").rstrip("\r\n")
        items.append(TextCrop(image.stem, image, text, "bengali"))
    return items
