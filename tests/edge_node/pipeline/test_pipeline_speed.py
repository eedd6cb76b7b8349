"""The speed work keeps results: zbar beside zxing-cpp, barcodes beside OCR, failures still surface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image
from support import encode, render_lines, rgb

from edge_node.engines.registry import EngineSet
from edge_node.errors import ModelError
from edge_node.pipeline import barcodes as bc
from edge_node.pipeline import runner
from shared_models.ocr import DocumentType, OcrOptions

BENCH = Path(__file__).resolve().parents[4] / "shared" / "bench" / "barcodes"


@pytest.mark.parametrize(
    "name", ["ean13-1_10", "qrcode-2_10", "upca-2_05", "code128-2_10", "upce-2_03", "ean13-5_01", "upca-3_03"]
)
def test_parallel_zbar_gives_the_same_codes(name: str) -> None:
    image = np.asarray(Image.open(BENCH / f"{name}.png").convert("RGB"))
    assert bc.read_barcodes(image, parallel=True) == bc.read_barcodes(image)


def test_a_zbar_failure_surfaces_in_parallel_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(attempt: object) -> list[object]:
        raise RuntimeError("zbar broke")

    monkeypatch.setattr(bc, "_zbar_reads", broken)
    with pytest.raises(RuntimeError, match="zbar broke"):
        bc.read_barcodes(np.full((64, 64, 3), 200, dtype=np.uint8), parallel=True)


def _label_with_code() -> bytes:
    text = rgb(render_lines(["FRESH MILK", "PRICE 45.50"]))
    code = np.asarray(zxingcpp.create_barcode("5901234123457", zxingcpp.BarcodeFormat.EAN13).to_image(scale=3))
    code = np.stack([code] * 3, axis=-1)
    height = text.shape[0] + code.shape[0] + 20
    width = max(text.shape[1], code.shape[1]) + 20
    page = np.full((height, width, 3), 255, dtype=np.uint8)
    page[: text.shape[0], : text.shape[1]] = text
    page[text.shape[0] + 10 : text.shape[0] + 10 + code.shape[0], 10 : 10 + code.shape[1]] = code
    return encode(Image.fromarray(page))


def test_barcodes_are_read_beside_ocr(engines: EngineSet) -> None:
    result = runner.run_image(_label_with_code(), OcrOptions(type=DocumentType.PRODUCT), engines)
    assert [(b.type, b.value) for b in result.barcodes] == [("EAN_13", "5901234123457")]
    assert "FRESH MILK" in result.text and "45.50" in result.text
    assert {"decode", "barcodes", "detect", "recognize", "extract"} <= set(result.stage_times_ms)
    steps: list[str] = []
    runner.run_image(_label_with_code(), OcrOptions(type=DocumentType.PRODUCT), engines,
                     progress=lambda step, _fraction: steps.append(step))
    assert steps == ["decode", "barcodes", "detect", "recognize", "extract"]


def test_an_ocr_failure_still_fails_the_request(engines: EngineSet, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> list[object]:
        raise ModelError("detector broke")

    monkeypatch.setattr(runner, "detect_rows", broken)
    with pytest.raises(ModelError, match="detector broke"):
        runner.run_image(_label_with_code(), OcrOptions(type=DocumentType.PRODUCT), engines)


def test_barcode_only_requests_skip_ocr(engines: EngineSet) -> None:
    result = runner.run_image(_label_with_code(), OcrOptions(type=DocumentType.BARCODE), engines)
    assert [(b.type, b.value) for b in result.barcodes] == [("EAN_13", "5901234123457")]
    assert result.lines == [] and "detect" not in result.stage_times_ms
