"""bench.datasets and bench.images on the real ../shared/bench files (read-only, nothing downloaded)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench.datasets import (
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    load_barcodes,
    load_bengali_lines,
    load_price_crops,
    load_scene_text,
    load_shelves,
    load_sroie,
    parse_lines_file,
)
from bench.images import crop_quad, encode_png, is_rotated, load_rgb
from bench.normalize import parse_amount, parse_date

DATA = DEFAULT_DATA_DIR


def test_default_data_dir_is_resolved_from_the_repo_root() -> None:
    assert (REPO_ROOT / "bench" / "datasets.py").exists()
    assert (REPO_ROOT.parent / "shared" / "bench").resolve() == DATA


def test_sroie_counts_and_fields() -> None:
    receipts = load_sroie(DATA)
    assert len(receipts) == 40
    assert sum(len(receipt.lines) for receipt in receipts) == 1975  # manifest n_lines summed
    for receipt in receipts:
        assert receipt.image.exists()
        assert set(receipt.fields) == {"company", "date", "address", "total"}
        assert parse_date(receipt.fields["date"]) is not None, receipt.fields["date"]
        assert parse_amount(receipt.fields["total"]) is not None, receipt.fields["total"]
    first = receipts[0]
    assert first.name == "X00016469622"
    assert first.lines[0].quad == ((96, 41), (353, 41), (353, 79), (96, 79))
    assert first.lines[0].text == "TAN WOON YANN"


def test_parse_lines_file_keeps_commas_in_transcripts() -> None:
    lines = parse_lines_file("1,2,10,2,10,8,1,8,TOTAL: 1,234.50\n\n3,4,5,4,5,6,3,6,A,B\n")
    assert [line.text for line in lines] == ["TOTAL: 1,234.50", "A,B"]
    with pytest.raises(ValueError, match="SROIE"):
        parse_lines_file("1,2,3\n")


def test_barcode_counts_and_exact_values() -> None:
    items = load_barcodes(DATA)
    assert len(items) == 320
    assert Counter(item.format for item in items) == {
        "QR_CODE": 100,
        "UPC_A": 84,
        "EAN_13": 80,
        "UPC_E": 28,
        "CODE_128": 24,
        "EAN_8": 4,
    }
    assert all(item.image.exists() for item in items)
    assert any(item.expected.endswith("\n") for item in items)  # some QR payloads end in a newline, kept
    assert any("\x1d" in item.expected for item in items)  # GS separators are kept
    upca = [item.expected for item in items if item.format == "UPC_A"]
    assert all(len(value) == 12 and value.isdigit() for value in upca)


def test_price_tag_counts() -> None:
    crops = load_price_crops(DATA)
    shelves = load_shelves(DATA)
    assert len(crops) == 75
    assert all(crop.price.isdigit() for crop in crops)
    assert [len(shelf.prices) for shelf in shelves] == [20, 25, 19]


def test_scene_text_counts() -> None:
    crops = load_scene_text(DATA)
    assert len(crops) == 300
    assert Counter(crop.source_set for crop in crops) == {"IIIT5K-test": 200, "SVT-test": 100}
    assert crops[0].text == "PARKING"


def test_bengali_counts_and_no_trailing_newline() -> None:
    lines = load_bengali_lines(DATA)
    assert len(lines) == 40
    assert all(line.text and not line.text.endswith("\n") for line in lines)
    assert lines[0].text.startswith("| ")


def test_limit_takes_the_first_items() -> None:
    assert [item.name for item in load_scene_text(DATA, 3)] == [item.name for item in load_scene_text(DATA)[:3]]
    assert len(load_shelves(DATA, 2)) == 2
    with pytest.raises(ValueError, match="limit"):
        load_sroie(DATA, -1)


def test_crop_quad_axis_aligned_and_clipped() -> None:
    image = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)
    crop = crop_quad(image, ((2, 1), (5, 1), (5, 3), (2, 3)))
    assert crop is not None
    assert crop.shape == (3, 4, 3)  # corners inclusive
    assert np.array_equal(crop, image[1:4, 2:6])
    clipped = crop_quad(image, ((15, 8), (30, 8), (30, 20), (15, 20)))
    assert clipped is not None
    assert clipped.shape == (2, 5, 3)
    assert crop_quad(image, ((25, 1), (30, 1), (30, 3), (25, 3))) is None


def test_crop_quad_warps_rotated_quads() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    quad = ((10, 20), (60, 10), (62, 30), (12, 40))
    assert is_rotated(quad)
    assert not is_rotated(((10, 20), (60, 21), (60, 40), (10, 40)))
    crop = crop_quad(image, quad)
    assert crop is not None
    assert crop.shape[2] == 3
    assert 45 <= crop.shape[1] <= 55
    assert 15 <= crop.shape[0] <= 25


def test_load_rgb_and_png(tmp_path: Path) -> None:
    receipt = load_sroie(DATA, 1)[0]
    page = load_rgb(receipt.image)
    assert page.dtype == np.uint8
    assert page.ndim == 3
    assert page.shape[2] == 3
    crop = crop_quad(page, receipt.lines[0].quad)
    assert crop is not None
    (tmp_path / "c.png").write_bytes(encode_png(crop))
    assert np.array_equal(load_rgb(tmp_path / "c.png"), crop)
    gray = load_rgb(load_bengali_lines(DATA, 1)[0].image)  # 8-bit grayscale PNG comes back as RGB
    assert gray.shape[2] == 3
