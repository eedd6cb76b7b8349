"""Test helpers: render text and barcodes into images, encode them, mint tokens."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BENGALI_FONT = "/usr/share/fonts/truetype/lohit-bengali/Lohit-Bengali.ttf"


def render_lines(lines: list[str], *, size: int = 32, font: str = LATIN_FONT, margin: int = 24) -> Image.Image:
    """Black text on white, one string per line."""
    face = ImageFont.truetype(font, size)
    widths = [int(face.getlength(line)) for line in lines]
    line_height = int(size * 1.6)
    image = Image.new("RGB", (max(widths) + 2 * margin, line_height * len(lines) + 2 * margin), "white")
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((margin, margin + number * line_height), line, fill="black", font=face)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    """Image -> file bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def rgb(image: Image.Image) -> np.ndarray:
    """Image -> RGB uint8 array."""
    return np.asarray(image.convert("RGB"))
