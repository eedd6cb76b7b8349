"""The per-set evaluators, driven by a fake backend over the real ../shared/bench files."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal

import numpy as np
import pytest

from bench.accuracy import Calls, Goal, Metric
from bench.client import BackendError, Timed
from bench.datasets import DEFAULT_DATA_DIR, load_barcodes, load_bengali_lines, load_scene_text, load_sroie
from bench.sets.barcodes import ZXING_JAVA_REFERENCE, condition, evaluate_barcodes, score_barcode, zxing_comparison
from bench.sets.lines import evaluate_bengali_lines, evaluate_scene_text
from bench.sets.price_tags import crop_price, evaluate_price_tags
from bench.sets.sroie import evaluate_sroie, evaluate_sroie_lines, score_fields
from shared_models.ocr import (
    Barcode,
    BoundingBox,
    DocumentType,
    Language,
    Line,
    OcrOptions,
    OcrResult,
    StructuredFields,
)

DATA = DEFAULT_DATA_DIR
BOX = BoundingBox(x=0, y=0, width=10, height=10)


def make_line(text: str, height: int = 10) -> Line:
    return Line(text=text, confidence=0.9, bounding_box=BoundingBox(x=0, y=0, width=10, height=height), engine="fake")


def make_result(
    lines: list[str] | None = None,
    structured: StructuredFields | None = None,
    barcodes: list[tuple[str, str]] | None = None,
    heights: list[int] | None = None,
) -> OcrResult:
    texts = lines or []
    return OcrResult(
        text="\n".join(texts),
        confidence=0.9,
        lines=[make_line(text, (heights or [10] * len(texts))[i]) for i, text in enumerate(texts)],
        barcodes=[
            Barcode(type=kind, value=value, confidence=1.0, bounding_box=BOX, decoder="fake")
            for kind, value in barcodes or []
        ],
        structured=structured or StructuredFields(),
        model_used="fake",
        processing_time_ms=4.0,
    )


class FakeBackend:
    """Answers from callables; records the options it was called with."""

    name = "fake"

    def __init__(
        self,
        images: Callable[[str], OcrResult] | None = None,
        lines: Callable[[np.ndarray], str] | None = None,
    ) -> None:
        self._images = images or (lambda _: make_result())
        self._lines = lines or (lambda _: "")
        self.options: list[OcrOptions] = []

    def image(self, data: bytes, options: OcrOptions, filename: str = "image") -> Timed[OcrResult]:
        assert data
        self.options.append(options)
        return Timed(self._images(filename), 5.0, 4.0)

    def line(self, image: np.ndarray, options: OcrOptions) -> Timed[Line]:
        assert image.dtype == np.uint8
        assert image.ndim == 3
        self.options.append(options)
        return Timed(make_line(self._lines(image)), 2.0)


def replay(texts: list[str]) -> Callable[[np.ndarray], str]:
    """A line reader that answers with ``texts`` in call order."""
    answers: Iterator[str] = iter(texts)
    return lambda _: next(answers)


def test_goal_and_metric() -> None:
    assert Goal(">=", 96.0).met(96.0)
    assert not Goal(">=", 96.0).met(95.99)
    assert Goal("<=", 3.0).met(2.5)
    assert str(Goal("<=", 3.0)) == "≤ 3"
    metric = Metric("cer", "CER", 2.5, "%", Goal("<=", 3.0))
    assert metric.shown() == "2.50%"
    assert metric.as_dict()["goal_met"] is True


def test_calls_times_and_records_failures() -> None:
    def fail(_: np.ndarray) -> str:
        raise BackendError("LOW_QUALITY", "too dark")

    calls = Calls(FakeBackend(lines=fail))
    assert calls.line("x", np.zeros((2, 2, 3), np.uint8), OcrOptions()) is None
    assert calls.errors == [{"item": "x", "code": "LOW_QUALITY", "message": "too dark"}]
    calls = Calls(FakeBackend())
    calls.image("a", b"x", OcrOptions(), group="crop")
    calls.image("b", b"x", OcrOptions(), group="crop")
    timing = calls.timing()["crop"]
    assert timing["calls"] == 2
    assert timing["wall_ms_p50"] == 5.0
    assert timing["server_ms_p95"] == 4.0


def test_sroie_lines_perfect_and_lower_case() -> None:
    receipts = load_sroie(DATA, 2)
    gt = [line.text for receipt in receipts for line in receipt.lines]
    backend = FakeBackend(lines=replay(gt))
    result = evaluate_sroie_lines(DATA, Calls(backend), 2)
    assert result.n_items == 2
    assert result.n_available == 40
    assert result.metric("word_f1_case_blind").value == pytest.approx(100.0)
    assert result.metric("line_cer_exact_case").value == 0.0
    assert {options.type for options in backend.options} == {DocumentType.RECEIPT}
    assert len(backend.options) == len(gt)

    lowered = evaluate_sroie_lines(DATA, Calls(FakeBackend(lines=replay([text.lower() for text in gt]))), 2)
    assert lowered.metric("word_f1_case_blind").value == pytest.approx(100.0)
    assert lowered.metric("word_f1_exact_case").value < 50.0
    assert lowered.metric("line_cer_case_blind").value == 0.0


def test_sroie_lines_failed_call_counts_as_empty() -> None:
    receipts = load_sroie(DATA, 1)
    gt = [line.text for line in receipts[0].lines]
    answers = iter(gt)

    def first_fails(_: np.ndarray) -> str:
        text = next(answers)
        if text == gt[0]:
            raise BackendError("MODEL_ERROR", "boom")
        return text

    result = evaluate_sroie_lines(DATA, Calls(FakeBackend(lines=first_fails)), 1)
    assert len(result.calls.errors) == 1
    words_total = sum(len(text.split()) for text in gt)
    recall = result.metric("word_recall_case_blind").value
    assert recall == pytest.approx(100 * (words_total - len(gt[0].split())) / words_total)
    assert result.metric("word_precision_case_blind").value == pytest.approx(100.0)


def test_score_fields() -> None:
    gt = {"company": "YONGFATT ENTERPRISE", "date": "25/12/2018", "address": "NO 1 JALAN", "total": "80.90"}
    structured = StructuredFields(merchant="Yongfatt  Enterprise", date="2018-12-25", total=80.9)
    correct, pairs, shown = score_fields(gt, structured)
    assert correct == {"company": True, "date": True, "address": False, "total": True}
    assert (pairs.matched, pairs.predicted, pairs.expected) == (3, 3, 4)
    assert shown["total"] == str(Decimal("80.90"))
    wrong = score_fields(gt, StructuredFields(date="2018-12-26", address="NO 1 JALAN"))
    assert wrong[0] == {"company": False, "date": False, "address": True, "total": False}
    assert (wrong[1].matched, wrong[1].predicted, wrong[1].expected) == (1, 2, 4)


def test_sroie_whole_receipts() -> None:
    receipts = {receipt.image.name: receipt for receipt in load_sroie(DATA, 3)}

    def answer(filename: str) -> OcrResult:
        receipt = receipts[filename]
        structured = StructuredFields(
            merchant=receipt.fields["company"].lower(),
            date="2099-01-01",
            total=float(str(Decimal(receipt.fields["total"].lstrip("$RM")))),
        )
        return make_result([line.text for line in receipt.lines], structured)

    backend = FakeBackend(images=answer)
    result = evaluate_sroie(DATA, Calls(backend), 3)
    assert result.metric("word_f1_case_blind").value == pytest.approx(100.0)
    assert result.metric("company_accuracy").value == 100.0
    assert result.metric("total_accuracy").value == 100.0
    assert result.metric("date_accuracy").value == 0.0
    assert result.metric("address_accuracy").value == 0.0
    assert result.metric("task3_precision").value == pytest.approx(100 * 6 / 9)
    assert result.metric("task3_recall").value == pytest.approx(100 * 6 / 12)
    assert result.p50_ms() == 5.0


def test_score_barcode() -> None:
    assert score_barcode("UPC_A", "012345678905", [("UPC_A", "012345678905")]).decoded
    outcome = score_barcode("UPC_A", "012345678905", [("EAN_13", "0012345678905")])
    assert (outcome.decoded, outcome.misread, outcome.wrong_format) == (False, True, False)
    outcome = score_barcode("UPC_A", "012345678905", [("EAN_13", "012345678905")])
    assert (outcome.decoded, outcome.misread, outcome.wrong_format) == (False, False, True)
    outcome = score_barcode("QR_CODE", "a\n", [("QR_CODE", "a")])  # exact: the trailing newline matters
    assert (outcome.decoded, outcome.misread) == (False, True)
    outcome = score_barcode("QR_CODE", "a", [("QR_CODE", "a"), ("CODE_128", "b")])
    assert (outcome.decoded, outcome.misread) == (True, True)
    outcome = score_barcode("QR_CODE", "a", [])
    assert (outcome.decoded, outcome.misread, outcome.wrong_format) == (False, False, False)


def test_barcode_conditions_and_zxing_reference() -> None:
    assert condition("ean13-5") == "blurry"
    assert condition("upce-3") == "reflective"
    assert condition("qrcode-1") == "other"
    assert len(ZXING_JAVA_REFERENCE) == 24
    assert sum(total for _, total in ZXING_JAVA_REFERENCE.values()) == 615
    assert sum(passing for passing, _ in ZXING_JAVA_REFERENCE.values()) == 473
    per_set = {"ean13-1": {"images": 17, "decoded": 10}, "ean13-5": {"images": 9, "decoded": 1}}
    comparison = zxing_comparison(per_set)
    assert comparison["images"] == 26
    assert comparison["decoded"] == 11
    assert comparison["zxing_scaled"] == pytest.approx(16.0)  # 17 * 32/34 + 9 * 0/18
    assert comparison["zxing_scaled_rate"] == pytest.approx(100 * 16 / 26)
    assert zxing_comparison(per_set, "blurry")["zxing_scaled"] == 0.0


def test_zxing_reference_matches_the_readme() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("zxing Java's own tests expect") :]
    paragraph = paragraph[: paragraph.index("So a strong decoder")]
    found = {name: (int(p), int(t)) for name, p, t in re.findall(r"([a-z0-9]+-\d) (\d+)/(\d+)", paragraph)}
    assert found == ZXING_JAVA_REFERENCE


def test_barcode_evaluator_counts() -> None:
    items = load_barcodes(DATA, 4)
    answers = {
        items[0].image.name: [(items[0].format, items[0].expected)],  # decoded
        items[1].image.name: [(items[1].format, items[1].expected + "0")],  # misread
        items[2].image.name: [],  # nothing
        items[3].image.name: [("QR_CODE", items[3].expected)],  # right value, wrong format
    }
    backend = FakeBackend(images=lambda name: make_result(barcodes=answers[name]))
    result = evaluate_barcodes(DATA, Calls(backend), 4)
    assert result.metric("decode_rate").value == 25.0
    assert result.metric("misread_rate").value == 25.0
    assert result.breakdown["per_format"]["CODE_128"]["images"] == 4
    assert result.breakdown["per_condition"]["other"]["wrong_format"] == 1
    assert {options.type for options in backend.options} == {DocumentType.BARCODE}


def test_crop_price_sources() -> None:
    assert crop_price(None) == (None, "none")
    assert crop_price(make_result(["199"], StructuredFields(price=299.0))) == ("299", "structured")
    assert crop_price(make_result(["国産", "¥1,980", "税込2138円"], heights=[50, 40, 10])) == ("1980", "lines")
    assert crop_price(make_result(["国産"])) == (None, "none")


def test_price_tags_evaluator() -> None:
    def answer(filename: str) -> OcrResult:
        if filename.endswith("_tag0.jpg"):
            return make_result(["¥12"])
        if filename.endswith("_tag1.jpg"):
            return make_result(["98円"])  # wrong: the label says 99
        return make_result(["40", "99", "99", "税込107円", "1234567"])  # a shelf: 3 bare prices

    backend = FakeBackend(images=answer)
    result = evaluate_price_tags(DATA, Calls(backend), 2)
    assert result.metric("crop_accuracy").value == 50.0
    # shelves 1 and 2 hold 20 + 25 prices, each with 40 and 99 in it; shelf 1 has 99 three times, shelf 2 once.
    # Each returns [40, 99, 99]: shelf 1 matches 3, shelf 2 matches 2.
    assert result.breakdown["shelves"]["matched"] == 5
    assert result.breakdown["shelves"]["predicted"] == 6
    assert result.breakdown["shelves"]["expected"] == 45
    assert result.n_items == 4
    assert set(result.calls.timing()) == {"crop", "shelf"}
    assert {options.type for options in backend.options} == {DocumentType.PRODUCT}


def test_scene_text_evaluator() -> None:
    crops = load_scene_text(DATA, 20)
    backend = FakeBackend(lines=replay([f" {crop.text.lower()}. " for crop in crops]))
    result = evaluate_scene_text(DATA, Calls(backend), 20)
    lower_dot = sum(f"{crop.text.lower()}." == crop.text for crop in crops)
    assert result.metric("accuracy_case_sensitive").value == pytest.approx(100 * lower_dot / 20)
    assert result.metric("accuracy_case_blind_alnum").value == 100.0
    assert result.metric("one_minus_ned_case_blind_alnum").value == 100.0
    assert result.metric("one_minus_ned").value < 100.0
    assert set(result.breakdown["per_source"]) == {"IIIT5K-test"}


def test_bengali_evaluator_normalises_danda_and_nfc() -> None:
    lines = load_bengali_lines(DATA, 5)
    swapped = [line.text.replace("|", "।") + "  " for line in lines]
    backend = FakeBackend(lines=replay(swapped))
    result = evaluate_bengali_lines(DATA, Calls(backend), 5)
    assert result.metric("cer").value == 0.0
    assert result.metric("line_accuracy").value == 100.0
    assert {options.language for options in backend.options} == {Language.BN}

    dropped = [line.text[:-1] for line in lines]  # the last character missing in each line
    result = evaluate_bengali_lines(DATA, Calls(FakeBackend(lines=replay(dropped))), 5)
    chars = result.breakdown["chars"]
    assert result.breakdown["char_edits"] == 5
    assert result.metric("cer").value == pytest.approx(100 * 5 / chars)


def test_field_confidence_buckets_split_at_the_threshold() -> None:
    from bench.sets.sroie import field_confidence_buckets

    buckets = field_confidence_buckets([(0.95, True), (0.9, False), (0.8, True), (0.5, False), (0.2, True)])
    assert buckets["high"] == {"fields": 3, "accuracy": pytest.approx(200 / 3)}
    assert buckets["low"] == {"fields": 2, "accuracy": 50.0}
    assert field_confidence_buckets([])["high"] == {"fields": 0, "accuracy": 0.0}
