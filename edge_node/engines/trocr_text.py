"""From generated token ids and their probabilities to a `LineReading` with words, confidences and x positions.

A sequence-to-sequence model gives no alignment between tokens and pixels, so word positions are estimated: the
line's text is assumed to span the crop, each character taking a share of the width by a rough advance-width
class (narrow `i l 1 . ,`, wide `M W m w @`, others 1). That is close enough to place a word box on a label.

Confidence: each character carries the probability of the token it came from; a word's confidence is the mean over
its characters and the line's over all of its non-space characters (as the PP-OCR engine does), so the pipeline's
threshold means the same for both engines. A line cut at the decoder's length limit (no end token) is usually a
runaway repetition on a crop that holds no text, so its confidence is halved to send it to the fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from edge_node.engines.base import LineReading, WordReading

#: Relative advance widths; anything not listed counts 1.0 (digits and most lower-case letters).
NARROW = frozenset("iIl1.,:;'|!`()[]{}fjrt ")
WIDE = frozenset("MWmw@%&")
NARROW_WIDTH = 0.5
WIDE_WIDTH = 1.4
UPPER_WIDTH = 1.15
#: Confidence factor of a line that never produced the end token.
TRUNCATED_FACTOR = 0.5


class Detokenizer(Protocol):
    """The part of `tokenizers.Tokenizer` used here."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids`."""
        ...


def char_probabilities(tokenizer: Detokenizer, ids: Sequence[int], probs: Sequence[float]) -> tuple[str, list[float]]:
    """Decode `ids` and give every character of the text the probability of the token that produced it.

    Decoding one token at a time loses spacing (sentencepiece's leading `▁`) and splits multi-byte characters,
    so the sequence is decoded by growing prefixes; characters that change between two prefixes (a completed
    UTF-8 character) take the newer token's probability.
    """
    text = ""
    char_probs: list[float] = []
    for end in range(1, len(ids) + 1):
        current = tokenizer.decode(list(ids[:end]), skip_special_tokens=True)
        common = 0
        limit = min(len(text), len(current))
        while common < limit and text[common] == current[common]:
            common += 1
        char_probs = char_probs[:common] + [float(probs[end - 1])] * (len(current) - common)
        text = current
    return text, char_probs


def _width(char: str) -> float:
    if char in NARROW:
        return NARROW_WIDTH
    if char in WIDE:
        return WIDE_WIDTH
    return UPPER_WIDTH if char.isupper() else 1.0


def line_reading(text: str, char_probs: Sequence[float], *, complete: bool = True) -> LineReading:
    """Words split at whitespace, with mean character confidence and width-proportional x0/x1 (0-1)."""
    stripped = text.strip()
    if not stripped:
        return LineReading("", 0.0)
    start = len(text) - len(text.lstrip())
    probs = np.asarray(char_probs[start : start + len(stripped)], dtype=float)
    widths = np.array([_width(c) for c in stripped])
    edges = np.concatenate([[0.0], np.cumsum(widths)]) / widths.sum()
    words: list[WordReading] = []
    index = 0
    for token in stripped.split():
        begin = stripped.index(token, index)
        end = begin + len(token)
        words.append(WordReading(token, float(probs[begin:end].mean()), float(edges[begin]), float(edges[end])))
        index = end
    letters = [p for c, p in zip(stripped, probs, strict=True) if not c.isspace()]
    confidence = float(np.mean(letters))
    if not complete:
        confidence *= TRUNCATED_FACTOR
        words = [WordReading(w.text, w.confidence * TRUNCATED_FACTOR, w.x0, w.x1) for w in words]
    return LineReading(" ".join(stripped.split()), confidence, words)
