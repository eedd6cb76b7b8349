"""The engine protocol and the plain data the engines hand back to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

#: A text region as four corner points (x, y), clockwise from top-left, in image pixels.
Quad = np.ndarray


@dataclass(frozen=True, slots=True)
class WordReading:
    """One word inside a line crop; x0/x1 are fractions (0-1) of the crop's width."""

    text: str
    confidence: float
    x0: float
    x1: float


@dataclass(frozen=True, slots=True)
class LineReading:
    """What an engine read in one line crop."""

    text: str
    confidence: float
    words: list[WordReading] = field(default_factory=list)


@runtime_checkable
class TextRecognizer(Protocol):
    """Reads pre-cut line images (RGB uint8, H x W x 3)."""

    key: str
    languages: frozenset[str]

    def recognize(self, crops: list[np.ndarray], language: str) -> list[LineReading]:
        """Read each crop as one line of text; one reading per crop, in order."""
        ...


@runtime_checkable
class TextDetector(Protocol):
    """Finds text lines in a whole image."""

    key: str

    def detect(self, image: np.ndarray, max_side: int) -> list[Quad]:
        """Return line quads in image coordinates; `max_side` bounds the detector's input size."""
        ...
