"""Metadata stripping (pipeline.metadata): upright first, then no EXIF/XMP/ICC/comments; lossless when upright."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from edge_node.errors import InvalidImageError
from edge_node.pipeline.metadata import strip_metadata
from tests.edge_node.security.helpers import encode
from tests.support import render_lines

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPS 23.8N</x:xmpmeta>'


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    return exif.tobytes()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _clean(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert len(image.getexif()) == 0
    assert not {"exif", "icc_profile", "xmp", "comment", "XML:com.adobe.xmp"} & set(image.info)
    assert b"PhoneMaker" not in data and b"GPS 23.8N" not in data
    return image


@pytest.mark.parametrize("progressive", [False, True])
def test_upright_jpeg_is_stripped_losslessly(progressive: bool) -> None:
    original = encode(render_lines(["PRICE 99"]), "JPEG", quality=90, exif=_exif(1), icc_profile=ICC, xmp=XMP,
                      comment=b"note", progressive=progressive)
    stripped = strip_metadata(original)
    _clean(stripped)
    assert len(stripped) < len(original)
    assert np.array_equal(_pixels(stripped), _pixels(original))  # same compressed data, not re-encoded


def test_turned_jpeg_is_re_encoded_upright() -> None:
    upright = render_lines(["PRICE 99"])
    original = encode(upright.rotate(90, expand=True), "JPEG", quality=95, exif=_exif(6), icc_profile=ICC)
    stripped = _clean(strip_metadata(original))
    assert stripped.format == "JPEG" and stripped.size == upright.size
    difference = np.abs(np.asarray(stripped.convert("L"), dtype=int) - np.asarray(upright.convert("L"), dtype=int))
    assert difference.mean() < 4  # quality 95: visually the same picture


def test_mpo_extra_images_and_trailing_bytes_are_dropped() -> None:
    first = encode(render_lines(["A 1"]), "JPEG", exif=_exif(1))
    second = encode(render_lines(["B 2"]), "JPEG", exif=_exif(1))
    stripped = strip_metadata(first + second)
    _clean(stripped)
    assert stripped.endswith(b"\xff\xd9") and stripped.count(b"\xff\xd8") == 1


def test_png_metadata_chunks_are_dropped() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "PhoneMaker")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    image = render_lines(["SUGAR 2"])
    original = encode(image, "PNG", pnginfo=info, icc_profile=ICC, exif=_exif(1))
    stripped = strip_metadata(original)
    clean = _clean(stripped)
    assert not getattr(clean, "text", {})
    assert np.array_equal(_pixels(stripped), _pixels(original))
    turned = strip_metadata(encode(image.rotate(90, expand=True), "PNG", exif=_exif(6)))
    assert _clean(turned).size == image.size


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF"])
def test_other_formats_with_metadata_are_re_encoded(fmt: str) -> None:
    image = render_lines(["OIL 3"])
    stripped = strip_metadata(encode(image, fmt, exif=_exif(6)))
    assert _clean(stripped).size == (image.height, image.width)


def test_files_without_metadata_come_back_unchanged() -> None:
    for data in (encode(render_lines(["X"]), "PNG"), encode(render_lines(["X"]), "JPEG"),
                 encode(render_lines(["X"]), "BMP")):
        assert strip_metadata(data) is data


def test_damaged_images_are_invalid() -> None:
    photo = encode(render_lines(["X 1"]), "JPEG", exif=_exif(6))
    with pytest.raises(InvalidImageError):
        strip_metadata(photo[: len(photo) // 2])
    with pytest.raises(InvalidImageError):
        strip_metadata(b"not an image")


def test_a_png_with_a_damaged_chunk_is_invalid() -> None:
    """The PNG fast path checks every chunk's CRC, so a flipped byte in the pixels is refused as before."""
    data = bytearray(encode(render_lines(["X 1"]), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF
    with pytest.raises(InvalidImageError):
        strip_metadata(bytes(data))


def test_a_png_text_chunk_goes_and_the_pixels_stay() -> None:
    from PIL import PngImagePlugin

    image = render_lines(["SECRET 42"])
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "shot at 23.81N 90.41E")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    stripped = strip_metadata(buffer.getvalue())
    assert b"tEXt" not in stripped and b"23.81N" not in stripped
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stripped)).convert("RGB")), np.asarray(image.convert("RGB")))
