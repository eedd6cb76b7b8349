"""PP-OCRv6 text detector and recognizer, run from the ONNX files shipped inside the rapidocr wheel.

Sessions come from `runtime.create_session`; the DB box post-processing is rapidocr's. The CTC decoding is
our own so that every character keeps its probability and its position, which gives word boxes and
word confidences.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort

from edge_node.engines.base import LineReading, Quad, WordReading
from edge_node.engines.class_head import head_columns
from edge_node.engines.onnx_file import read_onnx
from edge_node.engines.runtime import create_session
from edge_node.engines.word_gaps import insert_spaces, word_gaps
from edge_node.errors import ModelError

KEY = "ppocr"

#: Recognizer input height fixed by the PP-OCRv6 model.
REC_HEIGHT = 48
#: Most crops one recognizer run takes, and the most columns (batch x width) it holds: a run's buffers grow with
#: its columns (about 30 KB each), so this bounds them to about 50 MB a run (runs go side by side, one per core).
#: One crop may be as wide as REC_MAX_WIDTH.
REC_BATCH = 8
REC_MAX_BATCH_COLUMNS = 1600
#: A comma or space read between a number and exactly two final digits ("12,50", "0 00") is a decimal point the
#: model misread when the point had at least this probability at that time step: English and Bengali receipts and
#: tags write money with a point, and a thousands separator is followed by three digits. On SROIE line crops the
#: model read 190.00 as "190,00" (point 0.42) and 0.00 as "0 00" (point 0.19); +0.16 word F1.
DECIMAL_POINT_MIN_PROB = 0.05
#: A recognizer run costs about this many columns' worth of time on top of its columns (1.7 ms fixed, 0.07 ms a
#: column on one core): the weight used to share a call's runs out between cores.
RUN_COST_COLUMNS = 24
#: Narrowest recognizer input (the model's receptive field needs a few time steps).
REC_MIN_WIDTH = 16
#: Lines wider than this (after scaling to 48 px height) are read in one go anyway; PP-OCR handles ~100 chars.
REC_MAX_WIDTH = 3200
#: Unicode ranges an English reading may use: ASCII, the Latin-1 symbols (not its accented letters: shop
#: English and Malay print none, and the model reads a smudged A as Ä), general punctuation, currency signs,
#: letterlike symbols (No., TM) and number forms.
LATIN_TEXT_RANGES = ((0x20, 0x7E), (0xA0, 0xBF), (0x2010, 0x205E), (0x20A0, 0x20CF), (0x2100, 0x215F))
#: Symbols outside those ranges that still mean something on a price tag or receipt.
EXTRA_SYMBOLS = frozenset("円×÷•")
#: Detector output sizes must be multiples of 32 (the network downsamples five times).
DET_STRIDE = 32


@dataclass(frozen=True)
class PpocrConfig:
    """Where the models live and how sessions are built."""

    type: Literal["ppocr"] = "ppocr"
    model_dir: Path | None = None
    threads: int = 0
    enable_gpu: bool = False
    spin_wait: bool = False
    memory_arena: bool = False
    det_thresh: float = 0.3
    det_box_thresh: float = 0.5
    det_unclip_ratio: float = 1.6


def bundled_model_dir() -> Path:
    """The models folder inside the installed rapidocr wheel."""
    return Path(str(resources.files("rapidocr") / "models"))


class PpocrDetector:
    """DB text-line detector."""

    key = KEY

    def __init__(self, config: PpocrConfig) -> None:
        from rapidocr.ch_ppocr_det.utils import DBPostProcess

        model_dir = config.model_dir or bundled_model_dir()
        self._session = create_session(
            model_dir / "PP-OCRv6_det_small.onnx", threads=config.threads, enable_gpu=config.enable_gpu,
            spin_wait=config.spin_wait, memory_arena=config.memory_arena,
        )
        self._input = self._session.get_inputs()[0].name
        self._post = DBPostProcess(
            thresh=config.det_thresh,
            box_thresh=config.det_box_thresh,
            max_candidates=1000,
            unclip_ratio=config.det_unclip_ratio,
            use_dilation=True,
            score_mode="fast",
        )
        # DBPostProcess keeps no per-call state, but guard anyway: it is third-party code.
        self._post_lock = threading.Lock()
        # One detector run at a time in the process: a receipt's run holds ~175 MB for its duration, two workers
        # detecting at once held both (peak RSS +170 MB at concurrency 4); a run already uses every core.
        self._run_lock = threading.Lock()

    def detect(self, image: np.ndarray, max_side: int) -> list[Quad]:
        """Line quads (4x2 float32, clockwise from top-left) in `image` coordinates."""
        h, w = image.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        rh = max(DET_STRIDE, int(round(h * scale / DET_STRIDE)) * DET_STRIDE)
        rw = max(DET_STRIDE, int(round(w * scale / DET_STRIDE)) * DET_STRIDE)
        blob = _detector_blob(image, rw, rh)
        try:
            with self._run_lock:
                pred = self._session.run(None, {self._input: blob})[0]
        except Exception as err:
            raise ModelError(f"text detector failed: {err}") from err
        with self._post_lock:
            boxes, _scores = self._post(pred, (h, w))
        return [np.asarray(box, dtype=np.float32) for box in boxes]


def _detector_blob(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """RGB uint8 -> the detector's 1 x 3 x height x width float32 input: BGR, scaled to [-1, 1]. One OpenCV pass
    (`blobFromImage`) after the resize: 7 ms on a receipt where numpy's cast, scale and transposed copy took 16."""
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.dnn.blobFromImage(resized, scalefactor=2.0 / 255.0, mean=(127.5, 127.5, 127.5), swapRB=True)


class PpocrRecognizer:
    """CTC line recognizer (Latin, digits, symbols and CJK; no Bengali)."""

    key = KEY
    languages = frozenset({"en"})

    def __init__(self, config: PpocrConfig) -> None:
        model_path = (config.model_dir or bundled_model_dir()) / "PP-OCRv6_rec_small.onnx"
        model = read_onnx(model_path)
        characters = model.metadata.get("character")
        if not characters:
            raise ModelError("PP-OCR recognizer has no character list in its metadata")
        # Index 0 is the CTC blank; the model's last class is a space.
        self._charset = np.array(["", *characters.splitlines(), " "], dtype=object)
        allowed = np.array([i == 0 or _is_latin_text(c) for i, c in enumerate(self._charset)])
        # The ~200 classes an English reading may use, out of ~18,700: the session's head computes only these
        # (see `class_head`), or, for a model whose head is not found, decoding looks at these columns only.
        self._allowed_index = np.flatnonzero(allowed)
        head = head_columns(model.initializers, len(self._charset), self._allowed_index)
        self._head = {name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in head.items()}
        self._columns: np.ndarray | None = None if head else self._allowed_index
        dot_class = int(np.flatnonzero(self._charset == ".")[0])
        self._dot_column = int(np.flatnonzero(self._allowed_index == dot_class)[0]) if head else dot_class
        # One core per run, and a call's runs spread over the cores (see `recognize`): the recognizer's many small
        # runs parallelise poorly inside onnxruntime (2 intra-op threads: 1.65x) and well side by side (2.1x).
        self._parallel = max(1, config.threads or os.cpu_count() or 1)
        self._session = create_session(
            model_path, threads=1, enable_gpu=config.enable_gpu, spin_wait=config.spin_wait,
            memory_arena=config.memory_arena, initializers=self._head,
        )
        self._input = self._session.get_inputs()[0].name
        self._check_output_classes(len(self._allowed_index) if head else len(self._charset))
        self._pool = (ThreadPoolExecutor(self._parallel - 1, thread_name_prefix="ppocr-rec")
                      if self._parallel > 1 else None)

    def _check_output_classes(self, expected: int) -> None:
        """One blank crop through the session: its output must have a probability per class of the charset."""
        blank = np.zeros((1, 3, REC_HEIGHT, REC_MIN_WIDTH), dtype=np.float32)
        try:
            classes = self._session.run(None, {self._input: blank})[0].shape[-1]
        except Exception as err:
            raise ModelError(f"text recognizer failed its load check: {err}") from err
        if classes != expected:
            raise ModelError(f"text recognizer gives {classes} classes per step, its charset has {expected}")

    def recognize(self, crops: list[np.ndarray], language: str = "en") -> list[LineReading]:
        """Read each crop as one line; crops of the same scaled width share a run (see `_batches`), and the runs
        are shared out between the cores (see `share_runs`): the caller's thread takes one share."""
        widths = [_scaled_width(crop) for crop in crops]
        readings: list[LineReading] = [LineReading("", 0.0)] * len(crops)
        shares = share_runs(_batches(widths), widths, self._parallel if self._pool is not None else 1)
        futures: list[Future[None]] = []
        if self._pool is not None:
            futures = [self._pool.submit(self._run_share, share, crops, widths, readings) for share in shares[1:]]
        try:
            if shares:
                self._run_share(shares[0], crops, widths, readings)
        finally:
            errors = [future.exception() for future in futures]  # waits for every share, also on failure
        for error in errors:
            if error is not None:
                raise error
        return readings

    def _run_share(self, batches: list[list[int]], crops: list[np.ndarray], widths: list[int],
                   readings: list[LineReading]) -> None:
        """Run and decode these batches, writing each crop's reading into its slot of `readings`."""
        for batch in batches:
            padded = max(widths[i] for i in batch)
            blob = np.zeros((len(batch), 3, REC_HEIGHT, padded), dtype=np.float32)
            for row, index in enumerate(batch):
                blob[row, :, :, : widths[index]] = _normalise(crops[index], widths[index])
            try:
                probs = self._session.run(None, {self._input: blob})[0]
            except Exception as err:
                raise ModelError(f"text recognizer failed: {err}") from err
            for row, index in enumerate(batch):
                readings[index] = self._decode(probs[row], widths[index] / padded, word_gaps(crops[index]))

    def _decode(self, probs: np.ndarray, used_fraction: float, gaps: np.ndarray) -> LineReading:
        """Greedy CTC decoding that keeps each character's probability and time step; spaces where the
        image has a word gap that the model did not mark (see `word_gaps`)."""
        allowed = probs if self._columns is None else probs[:, self._columns]  # T x ~200
        pick = allowed.argmax(axis=1)
        best_prob = allowed[np.arange(pick.size), pick]
        best = self._allowed_index[pick]
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        steps = np.flatnonzero(keep)
        if steps.size == 0:
            return LineReading("", 0.0)
        total_steps = probs.shape[0] * used_fraction
        chars = list(self._charset[best[steps]])
        char_probs = best_prob[steps].astype(float)
        for index in decimal_separators(chars):
            dot = float(probs[steps[index], self._dot_column])
            if dot >= DECIMAL_POINT_MIN_PROB:
                chars[index], char_probs[index] = ".", dot
        spaces = insert_spaces(chars, (steps + 0.5) / total_steps, gaps)
        if spaces:
            chars = list(np.insert(np.array(chars, dtype=object), spaces, " "))
            char_probs = np.insert(char_probs, spaces, 1.0)
            steps = np.insert(steps, spaces, steps[spaces])
        text = "".join(chars)
        words = _split_words(chars, char_probs, steps, total_steps)
        stripped = text.strip()
        confidence = float(np.mean([p for c, p in zip(chars, char_probs, strict=True) if c != " "] or [0.0]))
        return LineReading(stripped, confidence, words)


def _is_latin_text(char: str) -> bool:
    """Characters an English (Latin-script) reading may contain: the model also knows 15,000 CJK characters,
    which on receipts only ever appear as misreadings of `*`, `:` and the like."""
    if not char:
        return False
    code = ord(char[0])
    return any(low <= code <= high for low, high in LATIN_TEXT_RANGES) or char in EXTRA_SYMBOLS


def _batches(widths: list[int]) -> list[list[int]]:
    """Crop indices grouped into recognizer runs: only crops of the same scaled width share a run.

    A run's time grows with batch x widest crop, so padding narrow crops to a wide one costs time in proportion
    (price tags: 23% of the recognizer's columns were padding, receipts 15%); and the model reads a padded crop
    slightly differently from the crop alone, so a line's reading would depend on its neighbours. A run costs a
    fixed ~1.7 ms besides, which is what batching equal widths still saves.
    """
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    batches: list[list[int]] = []
    for index in order:
        last = batches[-1] if batches else None
        if (
            last is not None
            and widths[last[0]] == widths[index]
            and len(last) < REC_BATCH
            and (len(last) + 1) * widths[index] <= REC_MAX_BATCH_COLUMNS
        ):
            last.append(index)
        else:
            batches.append([index])
    return batches


def decimal_separators(chars: list[str]) -> list[int]:
    """Indices of a "," or " " between a digit and exactly two final digits of a number (see
    DECIMAL_POINT_MIN_PROB): the places where a decimal point may have been misread."""
    found = []
    for i in range(1, len(chars) - 2):
        if (chars[i] in ", " and chars[i - 1].isdigit() and chars[i + 1].isdigit() and chars[i + 2].isdigit()
                and (i + 3 == len(chars) or not chars[i + 3].isdigit())):
            found.append(i)
    return found


def share_runs(batches: list[list[int]], widths: list[int], shares: int) -> list[list[list[int]]]:
    """Split a call's runs into at most `shares` groups of about equal cost (longest first onto the lightest
    group); a crop's reading does not depend on which group runs it."""
    groups: list[list[list[int]]] = [[] for _ in range(max(1, min(shares, len(batches))))]
    load = [0] * len(groups)
    for batch in sorted(batches, key=lambda b: -(RUN_COST_COLUMNS + widths[b[0]] * len(b))):
        lightest = load.index(min(load))
        groups[lightest].append(batch)
        load[lightest] += RUN_COST_COLUMNS + widths[batch[0]] * len(batch)
    return [group for group in groups if group]


def _scaled_width(crop: np.ndarray) -> int:
    h, w = crop.shape[:2]
    return int(min(REC_MAX_WIDTH, max(REC_MIN_WIDTH, np.ceil(REC_HEIGHT * w / max(h, 1)))))


def _normalise(crop: np.ndarray, width: int) -> np.ndarray:
    resized = cv2.resize(crop[:, :, ::-1], (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
    return resized.astype(np.float32).transpose(2, 0, 1) * (2.0 / 255.0) - 1.0


def _split_words(chars: list[str], probs: np.ndarray, steps: np.ndarray, total_steps: float) -> list[WordReading]:
    """Group characters into words at spaces; x positions are fractions of the crop's width."""
    words: list[WordReading] = []
    current: list[int] = []

    def flush() -> None:
        if current:
            text = "".join(chars[i] for i in current)
            x0 = max(0.0, (steps[current[0]] - 0.5) / total_steps)
            x1 = min(1.0, (steps[current[-1]] + 1.5) / total_steps)
            words.append(WordReading(text, float(np.mean(probs[current])), float(x0), float(x1)))
            current.clear()

    for i, char in enumerate(chars):
        if char == " ":
            flush()
        else:
            current.append(i)
    flush()
    return words
