"""Tesseract through tesserocr, kept loaded: a pool of APIs per language, each lent to one thread at a time (an API
is not thread-safe). An English API holds about 13 MB; the pool grows only to the number of threads reading that
language at once (one per busy worker), and line and raw-line modes share an API (`SetPageSegMode`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge_node.engines.base import LineReading, WordReading
from edge_node.errors import ModelError

# OpenMP makes Tesseract about 3x slower on two cores; it must be set before the library loads.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

KEY = "tesseract"

#: Our language codes -> Tesseract's traineddata names.
TESSERACT_LANGUAGES = {"en": "eng", "bn": "ben"}
#: Tesseract reads best with glyphs about 30 px high: crops are scaled (up or down) so their ink is this tall.
#: On the Bengali bench lines (57 px glyphs) this alone takes CER from 11.9% to about 1.3%.
TARGET_TEXT_HEIGHT = 32
#: Scaling bounds, so a crop of speckle is not blown up 50x.
MIN_SCALE, MAX_SCALE = 0.25, 4.0
#: Grey-level difference from the background that counts as ink when measuring the text height.
INK_CONTRAST = 48
#: White margin added around a line crop: Tesseract's layout analysis needs some background.
LINE_MARGIN = 8


@dataclass(frozen=True)
class TesseractConfig:
    """Where the traineddata lives."""

    type: Literal["tesseract"] = "tesseract"
    tessdata_dir: Path = Path("/usr/share/tesseract-ocr/5/tessdata")


class TesseractRecognizer:
    """Line recognizer for English and Bengali."""

    key = KEY
    languages = frozenset(TESSERACT_LANGUAGES)

    def __init__(self, config: TesseractConfig) -> None:
        try:
            import tesserocr
        except ImportError as err:
            raise ModelError("tesserocr is not installed: pip install 'zakpos-ocr[edge]'") from err
        self._tesserocr = tesserocr
        self._tessdata = str(config.tessdata_dir).rstrip("/") + "/"
        missing = [
            name for name in TESSERACT_LANGUAGES.values() if not (config.tessdata_dir / f"{name}.traineddata").exists()
        ]
        if missing:
            raise ModelError(f"Tesseract traineddata missing in {self._tessdata}: {', '.join(missing)}")
        self._free: dict[str, list[Any]] = {}  # loaded APIs not lent out, by language
        self._pool_lock = threading.Lock()

    @contextmanager
    def _borrowed(self, language: str) -> Iterator[Any]:
        """A loaded API of `language` for this thread alone until the block ends (loaded when none is free)."""
        with self._pool_lock:
            free = self._free.setdefault(language, [])
            api = free.pop() if free else None
        if api is None:
            api = self._load(language)
        try:
            yield api
        finally:
            with self._pool_lock:
                self._free[language].append(api)

    def _load(self, language: str) -> Any:
        tess_lang = TESSERACT_LANGUAGES.get(language)
        if tess_lang is None:
            raise ModelError(f"Tesseract has no model for language {language!r}")
        try:
            return self._tesserocr.PyTessBaseAPI(path=self._tessdata, lang=tess_lang)
        except RuntimeError as err:
            raise ModelError(f"cannot start Tesseract ({tess_lang}): {err}") from err

    def recognize(self, crops: list[np.ndarray], language: str = "en") -> list[LineReading]:
        """Read each crop as a single text line; when line mode finds nothing, try raw-line mode."""
        psm = self._tesserocr.PSM
        readings = []
        with self._borrowed(language) as api:
            for crop in crops:
                image = _prepare(crop)
                api.SetPageSegMode(psm.SINGLE_LINE)
                reading = self._read(api, image)
                if not reading.words:
                    # Line mode's layout step sometimes discards a whole clean line; raw-line mode skips it.
                    api.SetPageSegMode(psm.RAW_LINE)
                    reading = self._read(api, image)
                readings.append(reading)
        return readings

    def _read(self, api: Any, padded: Any) -> LineReading:
        try:
            api.SetImage(padded)
            api.Recognize()
        except RuntimeError as err:
            raise ModelError(f"Tesseract failed: {err}") from err
        words = self._words(api, padded.width)
        text = " ".join(word.text for word in words)
        confidence = float(np.mean([word.confidence for word in words])) if words else 0.0
        return LineReading(text, confidence, words)

    def _words(self, api: Any, padded_width: int) -> list[WordReading]:
        level = self._tesserocr.RIL.WORD
        iterator = api.GetIterator()
        words: list[WordReading] = []
        if iterator is None:
            return words
        content_width = max(1.0, padded_width - 2 * LINE_MARGIN)
        for item in self._tesserocr.iterate_level(iterator, level):
            try:
                text = item.GetUTF8Text(level)
            except RuntimeError:  # tesserocr raises "No text returned" for empty elements
                continue
            if not text or not text.strip():
                continue
            box = item.BoundingBox(level)
            x0 = (box[0] - LINE_MARGIN) / content_width if box else 0.0
            x1 = (box[2] - LINE_MARGIN) / content_width if box else 1.0
            words.append(
                WordReading(
                    text.strip(),
                    max(0.0, min(1.0, item.Confidence(level) / 100.0)),
                    min(1.0, max(0.0, x0)),
                    min(1.0, max(0.0, x1)),
                )
            )
        return words


def _prepare(crop: np.ndarray) -> Any:
    """Grey, scaled so the ink is TARGET_TEXT_HEIGHT tall, on a white margin."""
    from PIL import Image

    gray = crop if crop.ndim == 2 else np.asarray(Image.fromarray(crop).convert("L"))
    h, w = gray.shape[:2]
    background = int(np.median(np.concatenate([gray[:, 0], gray[:, -1]])))
    rows = np.flatnonzero((np.abs(gray.astype(np.int16) - background) > INK_CONTRAST).any(axis=1))
    text_height = int(rows[-1] - rows[0] + 1) if rows.size else h
    scale = min(MAX_SCALE, max(MIN_SCALE, TARGET_TEXT_HEIGHT / max(text_height, 1)))
    image = Image.fromarray(gray)
    if abs(scale - 1.0) > 0.05:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    padded = Image.new("L", (image.width + 2 * LINE_MARGIN, image.height + 2 * LINE_MARGIN), 255)
    padded.paste(image, (LINE_MARGIN, LINE_MARGIN))
    return padded
