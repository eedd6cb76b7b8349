"""Safe decoding: formats, EXIF orientation, decompression bombs, truncation, odd modes, reduced decoding."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from support import encode, render_lines

from edge_node.errors import InvalidImageError
from edge_node.pipeline.preprocess import decode_image, inspect_image

LIMITS = {"max_pixels": 50_000_000, "max_side": 2400}


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (200, 100), "white")
    image.paste((0, 0, 0), (0, 0, 20, 20))  # black square top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes()), **LIMITS)
    assert (decoded.width, decoded.height) == (100, 200)
    assert decoded.rgb.shape == (200, 100, 3)
    assert decoded.rgb[:20, -20:].mean() < 60  # the square moved to the top-right


def test_decompression_bomb_refused_from_the_header() -> None:
    data = _bomb_png(30000, 30000)
    with pytest.raises(InvalidImageError) as caught:
        inspect_image(data, max_pixels=50_000_000)
    assert caught.value.status == 400 and "30000x30000" in caught.value.message


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"", 400), (b"hello, I am text", 415), (b"PK\x03\x04zipfile", 415), (b"\xff\xd8\xff\xe0" + b"\0" * 10, 400)],
)
def test_not_images(data: bytes, status: int) -> None:
    with pytest.raises(InvalidImageError) as caught:
        decode_image(data, **LIMITS)
    assert caught.value.status == status


def test_truncated_jpeg_is_invalid() -> None:
    data = encode(render_lines(["TRUNCATED"]), "JPEG")
    with pytest.raises(InvalidImageError):
        decode_image(data[: len(data) // 2], **LIMITS)


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "LA", "P", "1", "RGBA"])
def test_odd_modes_become_rgb(mode: str) -> None:
    image = render_lines(["MODE"]).convert("L").convert(mode) if mode != "I;16" else Image.fromarray(
        np.asarray(render_lines(["MODE"]).convert("L"), dtype=np.uint16) * 257)
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    decoded = decode_image(encode(image, fmt), **LIMITS)
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.shape[2] == 3
    assert decoded.rgb.min() < 50 and decoded.rgb.max() > 200


def test_large_jpeg_is_decoded_reduced_with_its_scale() -> None:
    image = Image.new("RGB", (4000, 3000), "white")
    decoded = decode_image(encode(image, "JPEG"), max_pixels=50_000_000, max_side=1000)
    assert max(decoded.rgb.shape[:2]) <= 1000
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert decoded.scale == pytest.approx(decoded.rgb.shape[1] / 4000)
