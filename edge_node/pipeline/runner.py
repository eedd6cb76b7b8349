"""The whole pipeline for one image: decode -> quality -> barcodes -> detect -> recognise -> extract.

Pure and synchronous: bytes or arrays in, an `OcrResult` out; errors are typed `EdgeError`s. The worker runs
it in an executor; `progress(step, fraction)` lets it report each stage.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from edge_node.engines.base import Quad
from edge_node.engines.registry import EngineSet
from edge_node.pipeline import quality
from edge_node.pipeline.barcodes import read_barcodes
from edge_node.pipeline.detect import detect_rows
from edge_node.pipeline.extract import extract_fields
from edge_node.pipeline.geometry import crop_quad, quad_to_box, sub_quad
from edge_node.pipeline.preprocess import decode_image
from edge_node.pipeline.recognize import ChosenReading, recognize_crops
from shared_models.ocr import Barcode, BoundingBox, DocumentType, Line, OcrOptions, OcrResult, Word

ProgressCallback = Callable[[str, float], None]

#: Images up to this height in which the detector finds nothing are read as one line (word crops, tiny tags).
SINGLE_LINE_MAX_HEIGHT = 160
#: Barcodes of an OCR request are read on a thread of their own while the text is detected and read: they need
#: nothing from the OCR stages, and an idle core takes them off the request's latency (one thread per core at most).
BARCODE_THREADS = os.cpu_count() or 1

_barcode_pool: ThreadPoolExecutor | None = None
_barcode_pool_lock = threading.Lock()


def _barcode_executor() -> ThreadPoolExecutor:
    global _barcode_pool
    with _barcode_pool_lock:
        if _barcode_pool is None:
            _barcode_pool = ThreadPoolExecutor(max_workers=BARCODE_THREADS, thread_name_prefix="barcodes")
        return _barcode_pool


@dataclass(frozen=True, slots=True)
class PipelineLimits:
    """Decoding limits, from the node's config."""

    max_pixels: int = 50_000_000
    decode_max_side: int = 2400
    detector_max_side: int = 960
    detector_max_side_documents: int = 1280

    def detector_side(self, doc_type: DocumentType) -> int:
        """Receipts and invoices carry small print on tall pages: they get a larger detector input."""
        if doc_type in (DocumentType.RECEIPT, DocumentType.INVOICE):
            return self.detector_max_side_documents
        return self.detector_max_side


class _StageClock:
    """Times each stage and reports progress."""

    def __init__(self, progress: ProgressCallback | None, steps: list[str]) -> None:
        self.times: dict[str, float] = {}
        self._progress = progress
        self._steps = steps

    def report(self, name: str) -> None:
        """Tell the progress callback that stage `name` starts."""
        if self._progress is not None and name in self._steps:
            self._progress(name, self._steps.index(name) / len(self._steps))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.report(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = round((time.perf_counter() - start) * 1000, 2)


def run_image(
    data: bytes,
    options: OcrOptions,
    engines: EngineSet,
    limits: PipelineLimits | None = None,
    progress: ProgressCallback | None = None,
) -> OcrResult:
    """Run the full pipeline on an encoded image file."""
    limits = limits or PipelineLimits()
    started = time.perf_counter()
    ocr = options.type is not DocumentType.BARCODE
    steps = ["decode", "barcodes", "detect", "recognize", "extract"] if ocr else ["decode", "barcodes", "extract"]
    clock = _StageClock(progress, steps)
    with clock.stage("decode"):
        decoded = decode_image(data, max_pixels=limits.max_pixels, max_side=limits.decode_max_side)
        grey_std = quality.contrast(quality.grayscale(decoded.rgb))
        quality.check_readable(grey_std)
    barcodes: list[Barcode] = []
    pending: Future[tuple[list[Barcode], float]] | None = None
    if options.extract_barcodes and ocr:
        clock.report("barcodes")
        # Receipts and invoices print their codes crisp: the first pass reads them, and the retries (upscale,
        # contrast) would cost a document ~80 ms of CPU taken from its OCR on a 2-core box.
        retries = options.type is DocumentType.PRODUCT
        pending = _barcode_executor().submit(_timed_barcodes, decoded.rgb, decoded.scale, retries)
    elif not ocr:
        with clock.stage("barcodes"):
            barcodes = [_rescale_barcode(b, decoded.scale) for b in read_barcodes(decoded.rgb, parallel=True)]
    lines: list[Line] = []
    try:
        if ocr:
            image = quality.enhance_contrast(decoded.rgb, grey_std)
            with clock.stage("detect"):
                rows = detect_rows(image, engines.detector, limits.detector_side(options.type))
                if not rows and image.shape[0] <= SINGLE_LINE_MAX_HEIGHT:
                    rows = [[_whole_image_quad(image)]]
            with clock.stage("recognize"):
                lines = _read_rows(image, rows, options, engines, decoded.scale)
        if pending is not None:
            with clock.stage("barcodes_wait"):
                barcodes, barcode_ms = pending.result()
            clock.times["barcodes"] = barcode_ms
    finally:
        if pending is not None:
            pending.cancel()  # an OCR stage failed: a barcode read not yet started is not needed
    with clock.stage("extract"):
        structured = extract_fields(options.type, lines, barcodes)
    engines_used = sorted({line.engine for line in lines} - {""})
    return OcrResult(
        text="\n".join(line.text for line in lines),
        confidence=_weighted_confidence(lines),
        lines=lines,
        barcodes=barcodes,
        structured=structured,
        model_used="+".join(_split_engines(engines_used)) or ("barcode" if not ocr else engines.primary["en"]),
        processing_time_ms=round((time.perf_counter() - started) * 1000, 2),
        stage_times_ms=clock.times,
        image_width=decoded.width,
        image_height=decoded.height,
    )


def _timed_barcodes(rgb: np.ndarray, scale: float, retries: bool = True) -> tuple[list[Barcode], float]:
    """The barcode stage on its own thread: the codes, and how long reading them took (ms)."""
    start = time.perf_counter()
    barcodes = [_rescale_barcode(b, scale) for b in read_barcodes(rgb, retries=retries)]
    return barcodes, round((time.perf_counter() - start) * 1000, 2)


def run_line(image: np.ndarray, options: OcrOptions, engines: EngineSet) -> Line:
    """Read an RGB array as one text line, no detection (pre-cut line crops, word crops)."""
    language = options.language.value
    chosen = recognize_crops(
        [image], language, options.confidence_threshold, engines.primary_for(language),
        engines.fallback_for(language), document=_is_document(options),
    )
    return _make_line([_whole_image_quad(image)], chosen, 1.0)


def _read_rows(
    image: np.ndarray, rows: list[list[Quad]], options: OcrOptions, engines: EngineSet, scale: float
) -> list[Line]:
    language = options.language.value
    quads = [quad for row in rows for quad in row]
    crops = [crop_quad(image, quad) for quad in quads]
    chosen = recognize_crops(
        crops, language, options.confidence_threshold, engines.primary_for(language),
        engines.fallback_for(language), document=_is_document(options),
    )
    lines: list[Line] = []
    position = 0
    for row in rows:
        line = _make_line(row, chosen[position : position + len(row)], scale)
        position += len(row)
        if line.text:
            lines.append(line)
    return lines


def _make_line(quads: list[Quad], readings: list[ChosenReading], scale: float) -> Line:
    """One row of segments -> a Line with word boxes in upload pixels."""
    words: list[Word] = []
    texts: list[str] = []
    weights: list[tuple[float, int]] = []
    used: list[str] = []
    for quad, chosen in zip(quads, readings, strict=True):
        reading = chosen.reading
        if not reading.text:
            continue
        texts.append(reading.text)
        weights.append((reading.confidence, len(reading.text)))
        used.append(chosen.engine)
        for word in reading.words:
            words.append(
                Word(
                    text=word.text,
                    confidence=_clamp(word.confidence),
                    bounding_box=quad_to_box(sub_quad(quad, word.x0, word.x1), scale),
                    engine=chosen.engine,
                )
            )
    total = sum(n for _, n in weights)
    confidence = sum(c * n for c, n in weights) / total if total else 0.0
    box = quad_to_box(np.vstack(quads), scale) if quads else BoundingBox(x=0, y=0, width=1, height=1)
    return Line(
        text=" ".join(texts),
        confidence=_clamp(confidence),
        bounding_box=box,
        words=words,
        engine="+".join(sorted(set(used))),
    )


def _is_document(options: OcrOptions) -> bool:
    return options.type in (DocumentType.RECEIPT, DocumentType.INVOICE)


def _whole_image_quad(image: np.ndarray) -> Quad:
    h, w = image.shape[:2]
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)


def _rescale_barcode(barcode: Barcode, scale: float) -> Barcode:
    if scale == 1.0:
        return barcode
    box = barcode.bounding_box
    return barcode.model_copy(
        update={
            "bounding_box": BoundingBox(
                x=round(box.x / scale),
                y=round(box.y / scale),
                width=max(1, round(box.width / scale)),
                height=max(1, round(box.height / scale)),
            )
        }
    )


def _weighted_confidence(lines: list[Line]) -> float:
    total = sum(len(line.text) for line in lines)
    return _clamp(sum(line.confidence * len(line.text) for line in lines) / total) if total else 0.0


def _split_engines(keys: list[str]) -> list[str]:
    return sorted({part for key in keys for part in key.split("+")})


def _clamp(value: float) -> float:
    return round(min(1.0, max(0.0, float(value))), 4)
