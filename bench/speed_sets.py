"""The image sets of the speed benchmark, built deterministically from ``../shared/bench``.

* ``price_tags``: the first N shelf price-tag crops (about 100x80 px, type=product); truth: the price.
* ``barcodes``: N barcode photos spread evenly over the manifest (every k-th, so every source set is present;
  type=barcode); truth: (format, value).
* ``product``: N synthetic 1280x720 product photos (type=product). Each is a light, slightly noisy background with
  one retail barcode photo (EAN/UPC, from a set that is neither blurry nor reflective; never shrunk), one price-tag
  crop enlarged 2.5x and three scene-text word crops scaled to 56 px high, pasted at fixed places and saved as
  JPEG (quality 90). The choice of pieces depends only on the photo's index. Truth: the price, the barcode and the
  words (the "planted" items).
* ``receipts``: the first N SROIE receipts (type=receipt); truth: the ground-truth transcripts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from bench.datasets import load_barcodes, load_price_crops, load_scene_text, load_sroie
from bench.metrics import alnum_fold

T = TypeVar("T")

PRODUCT_SIZE = (1280, 720)
#: Barcode sets left out of the product photos: zxing itself reads none of the blurry ones.
HARD_BARCODE_SETS = frozenset({"ean13-5", "upca-6", "upca-3", "upce-3"})
RETAIL_FORMATS = frozenset({"EAN_13", "EAN_8", "UPC_A", "UPC_E"})
PRICE_TAG_ZOOM = 2.5
WORD_HEIGHT = 56
WORDS_PER_PHOTO = 3
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Truth:
    """What a system should read in an image (only the parts that apply to its set are set)."""

    price: str | None = None
    barcode: tuple[str, str] | None = None  # (format as zxing names it, value)
    words: tuple[str, ...] = ()
    text: str = ""  # receipts: the ground-truth transcripts, one line each


@dataclass(frozen=True)
class SpeedItem:
    """One encoded image, the request type it is sent with, and its truth."""

    name: str
    data: bytes
    filename: str
    doc_type: str
    truth: Truth


@dataclass(frozen=True)
class SpeedSet:
    """A named list of images of one request type."""

    key: str
    title: str
    doc_type: str
    items: list[SpeedItem] = field(default_factory=list)


def spread(items: list[T], count: int) -> list[T]:
    """``count`` items evenly spaced over the list (all of them when there are fewer); order kept."""
    if count <= 0 or not items:
        return []
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def price_tag_set(data_dir: Path, count: int) -> SpeedSet:
    """The first ``count`` price-tag crops."""
    items = [
        SpeedItem(crop.name, crop.image.read_bytes(), crop.image.name, "product", Truth(price=crop.price))
        for crop in load_price_crops(data_dir, count)
    ]
    return SpeedSet("price_tags", "price-tag crops (~100x80)", "product", items)


def barcode_set(data_dir: Path, count: int) -> SpeedSet:
    """``count`` barcode photos spread over all source sets."""
    items = [
        SpeedItem(code.name, code.image.read_bytes(), code.image.name, "barcode",
                  Truth(barcode=(code.format, code.expected)))
        for code in spread(load_barcodes(data_dir), count)
    ]
    return SpeedSet("barcodes", "barcode photos (type=barcode)", "barcode", items)


def receipt_set(data_dir: Path, count: int) -> SpeedSet:
    """The first ``count`` SROIE receipts."""
    items = [
        SpeedItem(receipt.name, receipt.image.read_bytes(), receipt.image.name, "receipt",
                  Truth(text="\n".join(line.text for line in receipt.lines)))
        for receipt in load_sroie(data_dir, count)
    ]
    return SpeedSet("receipts", "SROIE receipts (type=receipt)", "receipt", items)


def _background(index: int) -> np.ndarray:
    """A light vertical gradient with seeded noise, like a product shot on a shelf."""
    width, height = PRODUCT_SIZE
    rng = np.random.default_rng(1000 + index)
    ramp = np.linspace(238, 200, height, dtype=np.float32)[:, None, None]
    tint = np.array([1.0, 0.98, 0.94], dtype=np.float32)[None, None, :]
    noise = rng.normal(0.0, 4.0, size=(height, width, 1)).astype(np.float32)
    return np.clip(ramp * tint + noise, 0, 255).astype(np.uint8)


def _open_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return (image.convert("RGBA") if image.mode == "P" else image).convert("RGB")


def _fit(image: Image.Image, max_w: int, max_h: int, zoom: float = 1.0) -> Image.Image:
    """Scale by ``zoom``, then down (never up) to fit the box."""
    scale = min(zoom, max_w / image.width, max_h / image.height)
    if abs(scale - 1.0) < 1e-6:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def compose_product_photo(
    index: int, barcode: tuple[bytes, str, str], tag: tuple[bytes, str], words: list[tuple[bytes, str]]
) -> tuple[bytes, Truth]:
    """One 1280x720 JPEG: the barcode photo on the left, the enlarged tag top right, words below it."""
    canvas = Image.fromarray(_background(index))
    code_image = _fit(_open_rgb(barcode[0]), 640, 640)
    canvas.paste(code_image, (40, max(20, (PRODUCT_SIZE[1] - code_image.height) // 2)))
    tag_image = _fit(_open_rgb(tag[0]), 480, 300, zoom=PRICE_TAG_ZOOM)
    canvas.paste(tag_image, (730, 40))
    y = 40 + tag_image.height + 30
    planted: list[str] = []
    for data, label in words:
        word = _open_rgb(data)
        word = word.resize((max(1, min(500, round(word.width * WORD_HEIGHT / word.height))), WORD_HEIGHT),
                           Image.Resampling.BICUBIC)
        if y + word.height > PRODUCT_SIZE[1] - 20:
            break
        canvas.paste(word, (730, y))
        y += word.height + 24
        planted.append(label)
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), Truth(price=tag[1], barcode=(barcode[1], barcode[2]), words=tuple(planted))


def product_set(data_dir: Path, count: int) -> SpeedSet:
    """``count`` composed 1280x720 product photos."""
    codes = [
        code for code in load_barcodes(data_dir)
        if code.format in RETAIL_FORMATS and code.source_set not in HARD_BARCODE_SETS
    ]
    tags = load_price_crops(data_dir)
    # Words a reader can be scored on: at least 3 letters or digits once folded.
    words = [crop for crop in load_scene_text(data_dir) if len(alnum_fold(crop.text)) >= 3]
    picked_codes = spread(codes, count)
    items = []
    for index in range(count):
        code = picked_codes[index % len(picked_codes)]
        tag = tags[(index * 11 + 5) % len(tags)]
        chosen = [words[(index * WORDS_PER_PHOTO + k) * 13 % len(words)] for k in range(WORDS_PER_PHOTO)]
        data, truth = compose_product_photo(
            index,
            (code.image.read_bytes(), code.format, code.expected),
            (tag.image.read_bytes(), tag.price),
            [(word.image.read_bytes(), word.text) for word in chosen],
        )
        items.append(SpeedItem(f"product-{index:02d}", data, f"product-{index:02d}.jpg", "product", truth))
    return SpeedSet("product", "1280x720 product photos (composed)", "product", items)


def build_sets(data_dir: Path, counts: dict[str, int]) -> list[SpeedSet]:
    """The sets with a count above 0, in the report's order."""
    builders = {"price_tags": price_tag_set, "barcodes": barcode_set, "product": product_set,
                "receipts": receipt_set}
    return [builders[key](data_dir, count) for key, count in counts.items() if count > 0]
