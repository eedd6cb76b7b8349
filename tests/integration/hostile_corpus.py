"""A corpus of malformed and unusual uploads, generated (never downloaded): what a shop LAN may send."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Iterator

import numpy as np
from PIL import Image
from support import encode, render_lines


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


def _special(base: Image.Image) -> list[tuple[str, bytes]]:
    frames = [base.convert("P"), base.rotate(10).convert("P")]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    tiff = io.BytesIO()
    base.save(tiff, format="TIFF", save_all=True, append_images=[base.rotate(90)])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("photo.jpg", encode(base, "JPEG"))
    sixteen = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    return [
        ("animated-gif", gif.getvalue()),
        ("cmyk-jpeg", encode(base.convert("CMYK"), "JPEG")),
        ("png-16bit", encode(sixteen, "PNG")),
        ("multipage-tiff", tiff.getvalue()),
        ("webp", encode(base, "WEBP")),
        ("text-as-jpg", b"this is not a photo, it is a text file\n" * 10),
        ("zip", archive.getvalue()),
        ("zero-bytes", b""),
        ("huge-declared-png", _png_claiming(30000, 30000)),
        ("huge-declared-wide", _png_claiming(1_000_000, 8)),
        ("jpeg-magic-only", b"\xff\xd8\xff\xe0"),
        ("png-magic-only", b"\x89PNG\r\n\x1a\n"),
        ("tiny-1x1", encode(Image.new("RGB", (1, 1)), "PNG")),
        ("bmp", encode(base, "BMP")),
    ]


def hostile_uploads(count: int, seed: int = 1234) -> Iterator[tuple[str, bytes]]:
    """`count` uploads: the special cases above, then truncations, bit flips and wrong magic of real images."""
    rng = random.Random(seed)
    base = render_lines(["HOSTILE 12.50"], size=24)
    sources = [encode(base, "PNG"), encode(base, "JPEG"), encode(base, "WEBP"), encode(base, "GIF")]
    specials = _special(base)
    yield from specials[:count]
    for n in range(count - len(specials)):
        data = bytearray(rng.choice(sources))
        kind = n % 3
        if kind == 0:
            yield "truncated", bytes(data[: rng.randrange(0, len(data))])
        elif kind == 1:
            for _ in range(rng.randrange(1, 8)):
                position = rng.randrange(len(data))
                data[position] ^= 1 << rng.randrange(8)
            yield "bit-flipped", bytes(data)
        else:
            data[: rng.randrange(2, 9)] = rng.randbytes(8)[: 8]
            yield "wrong-magic", bytes(data)
