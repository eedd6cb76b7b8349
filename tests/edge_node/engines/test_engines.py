"""The real engines on rendered images and on a few bench files."""

from __future__ import annotations

import numpy as np
import pytest
from support import BENCH, BENGALI_FONT, render_lines, rgb

from edge_node.engines.base import TextRecognizer
from edge_node.engines.registry import EngineSet
from edge_node.pipeline.geometry import crop_quad


def test_ppocr_reads_a_rendered_line(engines: EngineSet) -> None:
    reading = engines.recognizers["ppocr"].recognize([rgb(render_lines(["PRICE 45.50 TK"]))], "en")[0]
    assert reading.text == "PRICE 45.50 TK"
    assert reading.confidence > 0.9
    assert [w.text for w in reading.words] == ["PRICE", "45.50", "TK"]
    assert all(0.0 <= w.x0 < w.x1 <= 1.0 for w in reading.words)
    assert reading.words[0].x1 <= reading.words[1].x0 + 0.05


def test_tesseract_reads_english_and_bengali(engines: EngineSet) -> None:
    tesseract = engines.recognizers["tesseract"]
    english = tesseract.recognize([rgb(render_lines(["Fresh Milk 500 ml"]))], "en")[0]
    assert english.text == "Fresh Milk 500 ml"
    bengali = tesseract.recognize([rgb(render_lines(["চাল ৫ কেজি"], font=BENGALI_FONT))], "bn")[0]
    assert bengali.text.replace(" ", "") == "চাল৫কেজি"
    assert 0.0 < bengali.confidence <= 1.0


def test_recognizers_satisfy_the_protocol(engines: EngineSet) -> None:
    for engine in engines.recognizers.values():
        assert isinstance(engine, TextRecognizer)


def test_detector_finds_each_rendered_line_in_order(engines: EngineSet) -> None:
    image = rgb(render_lines(["GRAND TOTAL", "RM 12.30", "THANK YOU"]))
    quads = engines.detector.detect(image, max_side=960)
    assert len(quads) == 3
    crops = [crop_quad(image, q) for q in sorted(quads, key=lambda q: float(q[:, 1].min()))]
    texts = [r.text for r in engines.recognizers["ppocr"].recognize(crops, "en")]
    assert texts == ["GRAND TOTAL", "RM 12.30", "THANK YOU"]


def test_blank_crop_reads_as_nothing(engines: EngineSet) -> None:
    reading = engines.recognizers["ppocr"].recognize([np.full((48, 200, 3), 255, dtype=np.uint8)], "en")[0]
    assert reading.text == ""


@pytest.mark.parametrize("engine_key", ["ppocr", "tesseract"])
def test_engines_on_bench_price_tag(engines: EngineSet, engine_key: str) -> None:
    """A real shelf tag: PP-OCR must read the price; Tesseract must at least return digits without failing."""
    from PIL import Image

    name = "20240913_161312_1107_2_tag15"
    expected = (BENCH / "price_tags" / f"{name}.txt").read_text().strip()
    image = rgb(Image.open(BENCH / "price_tags" / f"{name}.jpg"))
    quads = engines.detector.detect(image, max_side=960)
    crops = [crop_quad(image, q) for q in quads]
    texts = [r.text for r in engines.recognizers[engine_key].recognize(crops, "en")]
    joined = " ".join(texts)
    if engine_key == "ppocr":
        assert expected in joined
    else:
        assert any(ch.isdigit() for ch in joined)


def test_tesseract_survives_crops_with_empty_elements(engines: EngineSet) -> None:
    """Speckle and rules give Tesseract elements with no text; tesserocr raises for those, we skip them."""
    rng = np.random.default_rng(7)
    noise = (rng.random((40, 300, 3)) > 0.97).astype(np.uint8) * 255
    crops = [255 - noise, np.full((40, 300, 3), 255, dtype=np.uint8)]
    crops[1][18:22, 10:290] = 0  # a horizontal rule
    readings = engines.recognizers["tesseract"].recognize(crops, "en")
    assert len(readings) == 2
    assert all(0.0 <= r.confidence <= 1.0 for r in readings)


def test_word_gaps_restore_spaces_the_model_drops(engines: EngineSet) -> None:
    """A wide blank between `CASH` and `:` is a word space even where the recognizer glues them."""
    from edge_node.engines.word_gaps import insert_spaces, word_gaps

    image = rgb(render_lines(["CASH      :"], size=32))
    gaps = word_gaps(image)
    assert len(gaps) == 1 and 0.4 < gaps[0] < 0.9
    assert insert_spaces(list("CASH:"), np.array([0.1, 0.2, 0.3, 0.4, 0.95]), gaps) == [4]
    assert engines.recognizers["ppocr"].recognize([image], "en")[0].text == "CASH :"
    assert word_gaps(np.full((40, 100, 3), 255, dtype=np.uint8)).size == 0


def test_tesseract_lends_one_loaded_api_per_reader_and_language() -> None:
    """An API holds ~13 MB: one reader needs one per language (line and raw-line modes share it); two threads
    reading at once get one each, and read exactly what one thread reads."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from edge_node.engines.tesseract import TesseractConfig, TesseractRecognizer

    tesseract = TesseractRecognizer(TesseractConfig())
    crops = [rgb(render_lines([text])) for text in ("Fresh Milk 500 ml", "Rice 5 kg 450.00", "Soap 35")]
    blank = np.full((40, 300, 3), 255, dtype=np.uint8)  # nothing in line mode: the raw-line retry runs too
    alone = [r.text for r in tesseract.recognize([*crops, blank], "en")]
    tesseract.recognize(crops, "en")
    tesseract.recognize([rgb(render_lines(["চাল ৫ কেজি"], font=BENGALI_FONT))], "bn")
    assert {language: len(apis) for language, apis in tesseract._free.items()} == {"en": 1, "bn": 1}

    barrier = Barrier(2)

    def read(_: int) -> list[str]:
        barrier.wait()
        return [r.text for r in tesseract.recognize([*crops, blank] * 3, "en")]

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(read, range(2)))
    assert together == [alone * 3, alone * 3]
    assert alone[:3] == ["Fresh Milk 500 ml", "Rice 5 kg 450.00", "Soap 35"]
    assert len(tesseract._free["en"]) == 2
