"""Temporary measurement of edge_node.pipeline.barcodes on ../shared/bench/barcodes (not part of the product).

Usage: .venv/bin/python bench/barcode_probe.py [--bench DIR] [--verbose]

Scoring follows the bench README: an image is right when some returned barcode has the manifest's format and
exactly the expected value (the .txt bytes, decoded as UTF-8); it is a misread when it returned any EAN/UPC,
Code 128 or QR value that is not the expected one. Latency is read_barcodes alone, image loading excluded.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from edge_node.pipeline.barcodes import read_barcodes

DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "barcodes"
# Formats whose wrong values count as misreads (the bench README's definition).
MISREAD_KINDS = frozenset({"EAN_13", "EAN_8", "UPC_A", "UPC_E", "CODE_128", "QR_CODE"})
# zxing Java's own blackbox expectations per set (passing / images in the full set), from the bench README.
ZXING_JAVA = {
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


def load_rgb(path: Path) -> np.ndarray:
    """The photo as uploaded: EXIF orientation applied, RGB uint8."""
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def load_manifest(bench: Path) -> list[dict[str, str]]:
    """Manifest rows with the expected value read from the .txt bytes."""
    rows = []
    with (bench / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            row["expected"] = (bench / row["file"]).with_suffix(".txt").read_bytes().decode("utf-8")
            rows.append(row)
    return rows


def pct(part: int, whole: int) -> str:
    """``part/whole (xx.x%)``."""
    return f"{part}/{whole} ({100.0 * part / whole:.1f}%)" if whole else "0/0"


def main() -> None:
    """Run the probe and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    parser.add_argument("--verbose", action="store_true", help="list misreads and images not decoded")
    args = parser.parse_args()

    rows = load_manifest(args.bench)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    right_fmt: Counter[str] = Counter()
    total_fmt: Counter[str] = Counter()
    misread_images: set[str] = set()
    misreads_by_kind: Counter[str] = Counter()
    times: list[float] = []
    misses: list[str] = []
    subsets: dict[str, list[bool]] = defaultdict(list)
    read_barcodes(load_rgb(args.bench / rows[0]["file"]))  # warm-up: first call loads the libraries' tables
    for row in rows:
        image = load_rgb(args.bench / row["file"])
        start = time.perf_counter()
        found = read_barcodes(image)
        times.append((time.perf_counter() - start) * 1000.0)
        ok = any(b.type == row["format"] and b.value == row["expected"] for b in found)
        total[row["source_set"]] += 1
        total_fmt[row["format"]] += 1
        right[row["source_set"]] += ok
        right_fmt[row["format"]] += ok
        if row["note"]:
            subsets[row["note"].split(" ")[0]].append(ok)
        if not ok:
            misses.append(
                f"{row['file']}: expected {row['format']} {row['expected'][:40]!r}, got "
                f"{[(b.type, b.value[:30]) for b in found]}"
            )
        for b in found:
            if b.type in MISREAD_KINDS and (b.type, b.value) != (row["format"], row["expected"]):
                misread_images.add(row["file"])
                misreads_by_kind[b.type] += 1
                if args.verbose:
                    print(
                        f"MISREAD {row['file']}: expected {row['expected'][:40]!r}, got {b.type} "
                        f"{b.value[:40]!r} conf {b.confidence} by {b.decoder}"
                    )

    n = len(rows)
    print(f"images: {n}")
    print(f"decoded right (zxing presentation): {pct(sum(right.values()), n)}")
    print(f"misread images: {pct(len(misread_images), n)}  by format: {dict(misreads_by_kind)}")
    times.sort()
    print(
        f"ms per image: p50 {statistics.median(times):.1f}  p95 {times[int(0.95 * (n - 1))]:.1f}  "
        f"max {times[-1]:.1f}  mean {statistics.fmean(times):.1f}"
    )
    print("per format:")
    for fmt in sorted(total_fmt):
        print(f"  {fmt:10s} {pct(right_fmt[fmt], total_fmt[fmt])}")
    print("per set (ours | zxing Java reference on the full set):")
    for name in sorted(total):
        ref = ZXING_JAVA.get(name)
        ref_text = f"{pct(*ref)}" if ref else "-"
        print(f"  {name:14s} {pct(right[name], total[name]):16s} | {ref_text}")
    for name, oks in sorted(subsets.items()):
        print(f"subset {name}: {pct(sum(oks), len(oks))}")
    if args.verbose:
        print("not decoded:")
        for line in misses:
            print("  " + line)


if __name__ == "__main__":
    main()
