"""Tesseract through tesserocr, kept loaded: one API per thread and language (the API is not thread-safe)."""

from __future__ import annotations

import os
import threading
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
#: Tesseract reads best with text about 30-40 px high; smaller line crops are scaled up to this.
MIN_LINE_HEIGHT = 32
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
        self._local = threading.local()

    def _api(self, language: str) -> Any:
        apis: dict[str, Any] = self._local.__dict__.setdefault("apis", {})
        api = apis.get(language)
        if api is None:
            tess_lang = TESSERACT_LANGUAGES.get(language)
            if tess_lang is None:
                raise ModelError(f"Tesseract has no model for language {language!r}")
            try:
                api = self._tesserocr.PyTessBaseAPI(
                    path=self._tessdata, lang=tess_lang, psm=self._tesserocr.PSM.SINGLE_LINE
                )
            except RuntimeError as err:
                raise ModelError(f"cannot start Tesseract ({tess_lang}): {err}") from err
            apis[language] = api
        return api

    def recognize(self, crops: list[np.ndarray], language: str = "en") -> list[LineReading]:
        """Read each crop as a single text line."""
        api = self._api(language)
        return [self._read_line(api, crop) for crop in crops]

    def _read_line(self, api: Any, crop: np.ndarray) -> LineReading:
        from PIL import Image

        gray = crop if crop.ndim == 2 else np.asarray(Image.fromarray(crop).convert("L"))
        h, w = gray.shape[:2]
        scale = max(1.0, MIN_LINE_HEIGHT / max(h, 1))
        image = Image.fromarray(gray)
        if scale > 1.0:
            image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)
        padded = Image.new("L", (image.width + 2 * LINE_MARGIN, image.height + 2 * LINE_MARGIN), 255)
        padded.paste(image, (LINE_MARGIN, LINE_MARGIN))
        try:
            api.SetImage(padded)
            api.Recognize()
        except RuntimeError as err:
            raise ModelError(f"Tesseract failed: {err}") from err
        words = self._words(api, padded.width, scale)
        text = " ".join(word.text for word in words)
        confidence = float(np.mean([word.confidence for word in words])) if words else 0.0
        return LineReading(text, confidence, words)

    def _words(self, api: Any, padded_width: int, scale: float) -> list[WordReading]:
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
