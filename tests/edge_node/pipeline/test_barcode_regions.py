"""Retries on the regions where OpenCV's localiser sees bars: found where the code is, read back in input pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp

from edge_node.pipeline import barcodes
from edge_node.pipeline.barcode_regions import barcode_regions

CODE_AT = (700, 400)  # x, y of the code's top-left corner in the photo


def _photo(scale: int = 2) -> tuple[np.ndarray, tuple[int, int]]:
    code = np.asarray(zxingcpp.create_barcode("4006381333931", zxingcpp.BarcodeFormat.EAN13).to_image(scale=scale))
    photo = np.full((720, 1280), 235, np.uint8)
    x, y = CODE_AT
    photo[y : y + code.shape[0], x : x + code.shape[1]] = code
    noisy = photo + np.random.default_rng(0).normal(0, 6, photo.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8), code.shape[:2]


def test_the_region_holds_the_code_with_its_quiet_zone() -> None:
    photo, (height, width) = _photo()
    regions = barcode_regions(photo)
    assert regions
    x0, y0, x1, y1 = regions[0]
    assert x0 <= CODE_AT[0] and y0 <= CODE_AT[1]
    assert x1 >= CODE_AT[0] + width and y1 >= CODE_AT[1] + height
    assert (x1 - x0) * (y1 - y0) < photo.size / 4  # a part of the photo, not the photo


def test_no_region_on_a_photo_without_bars_nor_in_a_small_image() -> None:
    blank = np.clip(np.random.default_rng(1).normal(200, 6, (480, 640)), 0, 255).astype(np.uint8)
    assert barcode_regions(blank) == []
    photo, _shape = _photo()
    assert barcode_regions(photo[390:530, 690:930].copy()) == []  # under MIN_IMAGE_PIXELS: not searched


def test_reads_on_a_region_are_placed_in_the_photos_pixels() -> None:
    """A region attempt is cut out and upscaled; its reads' boxes must come back where the code is in the photo."""
    photo, (height, width) = _photo()
    attempts = list(barcodes._region_attempts(photo, 1.0, first_index=1))
    assert attempts and any(attempt.scale > 1.0 for attempt in attempts)  # the small region is also upscaled
    assert all(attempt.origin != (0.0, 0.0) and not attempt.primary for attempt in attempts)
    reads = [read for attempt in attempts for read in barcodes._decode(attempt)]
    assert reads and {read.value for read in reads} == {"4006381333931"}
    for read in reads:
        x0, y0, x1, y1 = read.box
        assert abs(x0 - CODE_AT[0]) < 30 and abs(x1 - (CODE_AT[0] + width)) < 30
        assert CODE_AT[1] - 10 <= y0 and y1 <= CODE_AT[1] + height + 10


def test_an_opencv_without_the_localiser_gives_no_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    photo, _shape = _photo()
    assert barcode_regions(photo)
    monkeypatch.delattr(cv2, "barcode")
    assert barcode_regions(photo) == []
    assert barcodes.read_barcodes(photo)[0].value == "4006381333931"  # the first pass still reads it
