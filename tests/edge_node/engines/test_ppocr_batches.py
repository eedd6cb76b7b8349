"""PP-OCR recognizer speed work keeps its readings: width-aware batching and decoding only the allowed classes."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
from support import render_lines, rgb

from edge_node.engines import ppocr
from edge_node.engines.registry import EngineSet
from edge_node.engines.runtime import create_session


@pytest.mark.parametrize(
    "widths",
    [[], [48], [281, 64, 108], [100] * 20, [300, 310, 300, 50, 50, 900, 60], [1600, 1600, 1600, 3200, 3200]],
)
def test_batches_cover_every_crop_once_and_never_pad(widths: list[int]) -> None:
    batches = ppocr._batches(widths)
    assert sorted(i for b in batches for i in b) == list(range(len(widths)))
    for batch in batches:
        assert 1 <= len(batch) <= ppocr.REC_BATCH
        assert len({widths[i] for i in batch}) == 1  # no crop is padded to a wider one
        if len(batch) > 1:
            assert len(batch) * widths[batch[0]] <= ppocr.REC_MAX_BATCH_COLUMNS


def test_equal_widths_share_runs() -> None:
    assert ppocr._batches([100] * 20) == [list(range(8)), list(range(8, 16)), list(range(16, 20))]
    assert ppocr._batches([600, 48, 600]) == [[1], [0, 2]]


def test_batched_reading_equals_one_crop_at_a_time(engines: EngineSet) -> None:
    recognizer = engines.recognizers["ppocr"]
    texts = ["TOTAL 12.30", "RM", "THANK YOU FOR SHOPPING WITH US", "45", "CASH 20.00"]
    crops = [rgb(render_lines([text])) for text in texts]
    together = recognizer.recognize(crops, "en")
    alone = [recognizer.recognize([crop], "en")[0] for crop in crops]
    assert [r.text for r in together] == [r.text for r in alone] == texts
    for a, b in zip(together, alone, strict=True):
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


def test_cut_head_reads_what_masking_the_full_head_read(engines: EngineSet) -> None:
    """The session computes only the allowed classes (see `class_head`); the model with its full head, decoded
    by looking at the allowed columns only (the path for a model whose head is not found), reads the same."""
    recognizer = engines.recognizers["ppocr"]
    assert isinstance(recognizer, ppocr.PpocrRecognizer)
    assert recognizer._columns is None  # the bundled model's head was found and cut
    full = create_session(ppocr.bundled_model_dir() / "PP-OCRv6_rec_small.onnx", threads=1, memory_arena=False)
    texts = ["TOTAL 12.30", "THANK YOU FOR SHOPPING WITH US", "CASH 20.00", "Qty 2 x RM4.50"]
    for text in texts:
        crop = rgb(render_lines([text]))
        width = ppocr._scaled_width(crop)
        blob = ppocr._normalise(crop, width)[np.newaxis]
        cut = recognizer._session.run(None, {recognizer._input: blob})[0][0]
        probs = full.run(None, {full.get_inputs()[0].name: blob})[0][0]
        assert cut.shape == (probs.shape[0], recognizer._allowed_index.size)
        assert (cut.argmax(axis=1) == probs[:, recognizer._allowed_index].argmax(axis=1)).all()
        gaps = ppocr.word_gaps(crop)
        unmasked = copy.copy(recognizer)
        unmasked._columns = recognizer._allowed_index
        unmasked._dot_column = int(np.flatnonzero(recognizer._charset == ".")[0])
        assert recognizer._decode(cut, 1.0, gaps).text == unmasked._decode(probs, 1.0, gaps).text == text


def test_decoding_never_picks_a_class_outside_the_allowed_ones(engines: EngineSet) -> None:
    recognizer = copy.copy(engines.recognizers["ppocr"])
    assert isinstance(recognizer, ppocr.PpocrRecognizer)
    recognizer._columns = recognizer._allowed_index
    classes = len(recognizer._charset)
    probs = np.random.default_rng(3).random((60, classes)).astype(np.float32)
    probs[:, 5000] = 2.0  # a CJK class that would win if it were allowed
    assert 5000 not in recognizer._allowed_index
    text = recognizer._decode(probs, 1.0, np.empty(0)).text
    assert text and str(recognizer._charset[5000]) not in text


@pytest.mark.parametrize("shares", [1, 2, 3])
def test_runs_are_shared_out_whole_and_evenly(shares: int) -> None:
    widths = [300, 310, 300, 50, 50, 900, 60, 120, 120, 120, 48]
    batches = ppocr._batches(widths)
    groups = ppocr.share_runs(batches, widths, shares)
    assert len(groups) == min(shares, len(batches))
    assert sorted(map(tuple, (b for g in groups for b in g))) == sorted(map(tuple, batches))
    cost = [sum(ppocr.RUN_COST_COLUMNS + widths[b[0]] * len(b) for b in g) for g in groups]
    heaviest_run = max(ppocr.RUN_COST_COLUMNS + widths[b[0]] * len(b) for b in batches)
    assert max(cost) - min(cost) <= heaviest_run  # the greedy split is within one run of even
    assert ppocr.share_runs([], [], 2) == []


def test_reading_on_several_cores_equals_reading_on_one() -> None:
    texts = ["TOTAL 12.30", "RM", "THANK YOU FOR SHOPPING WITH US", "45", "CASH 20.00", "GST 6%", "QTY 2"]
    crops = [rgb(render_lines([text])) for text in texts]
    one = ppocr.PpocrRecognizer(ppocr.PpocrConfig(threads=1)).recognize(crops, "en")
    two = ppocr.PpocrRecognizer(ppocr.PpocrConfig(threads=2)).recognize(crops, "en")
    assert [r.text for r in two] == [r.text for r in one] == texts
    assert [r.confidence for r in two] == [r.confidence for r in one]


@pytest.mark.parametrize(("text", "expected"), [
    ("190,00", [3]), ("0 00", [1]), ("TOTAL 12,50 RM", [8]), ("1,000", []), ("12,5", []), ("12,500", []),
    ("A,12", []), ("RM 1,00", [4]), ("1,00,00", [1, 4]), ("12.50", []),
])
def test_decimal_separator_candidates(text: str, expected: list[int]) -> None:
    assert ppocr.decimal_separators(list(text)) == expected


def test_a_comma_read_for_a_decimal_point_becomes_a_point_only_when_the_point_was_likely(engines: EngineSet) -> None:
    recognizer = engines.recognizers["ppocr"]
    assert isinstance(recognizer, ppocr.PpocrRecognizer)
    classes = len(recognizer._charset)
    index = {c: int(np.flatnonzero(recognizer._charset == c)[0]) for c in "1,.0"}

    def probs(point: float) -> np.ndarray:
        rows = []
        for char in "1,00":
            row = np.full(classes, 1e-6, dtype=np.float32)
            row[index[char]] = 0.6
            if char == ",":
                row[index["."]] = point
            rows += [row, np.eye(classes, dtype=np.float32)[0]]  # each character, then a blank
        return np.stack(rows)

    assert recognizer._decode(probs(0.3), 1.0, np.empty(0)).text == "1.00"
    assert recognizer._decode(probs(0.01), 1.0, np.empty(0)).text == "1,00"


def test_detector_input_is_bgr_scaled_to_minus_one_one() -> None:
    """The one-pass OpenCV blob equals the numpy formula it replaced (to float rounding)."""
    image = np.random.default_rng(5).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    blob = ppocr._detector_blob(image, 64, 32)
    resized = cv2.resize(image[:, :, ::-1], (64, 32), interpolation=cv2.INTER_LINEAR)
    expected = (resized.astype(np.float32) * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)[np.newaxis]
    assert blob.shape == (1, 3, 32, 64) and blob.dtype == np.float32 and blob.flags.c_contiguous
    np.testing.assert_allclose(blob, expected, atol=1e-6)
