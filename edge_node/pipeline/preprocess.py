"""Decode an upload safely: check the declared size before allocating, apply EXIF orientation, decode
large JPEGs at reduced size, and hand back an RGB array without the file's metadata."""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edge_node.errors import InvalidImageError

#: Formats the node accepts; everything else is refused before decoding.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"})
#: File signatures of the accepted formats (WebP is checked separately: RIFF....WEBP).
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
#: Below this many pixels on a side there is nothing to read.
MIN_SIDE = 8

# We enforce our own pixel cap before decoding; Pillow's own bomb check would raise a different error type.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An RGB uint8 array plus what is needed to map boxes back to the upload's pixels."""

    rgb: np.ndarray
    width: int
    height: int
    scale: float
    format: str


def inspect_image(data: bytes, *, max_pixels: int) -> tuple[str, int, int]:
    """Check the header only (no pixel data is decoded): (format, width, height) or INVALID_IMAGE."""
    image = _open_checked(data, max_pixels)
    return str(image.format), image.width, image.height


def decode_image(data: bytes, *, max_pixels: int, max_side: int) -> DecodedImage:
    """Decode `data`; `width`/`height` are the oriented upload's size, `rgb` may be smaller (see `scale`)."""
    return _load(_open_checked(data, max_pixels), max_side)


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise InvalidImageError("the uploaded file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:
        if _has_image_magic(data):
            raise InvalidImageError("the image is damaged: its header cannot be read") from err
        raise InvalidImageError("the upload is not an image the node can read", status=415) from err
    except (OSError, ValueError, SyntaxError) as err:
        raise InvalidImageError(f"the image header is damaged: {err}") from err
    if image.format not in ACCEPTED_FORMATS:
        raise InvalidImageError(f"image format {image.format} is not accepted", status=415)
    width, height = image.size
    if width * height > max_pixels:
        raise InvalidImageError(
            f"the image declares {width}x{height} pixels; the limit is {max_pixels} pixels",
            details={"width": width, "height": height, "max_pixels": max_pixels},
        )
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(f"the image is {width}x{height}; at least {MIN_SIDE} px a side is needed")
    return image


def _has_image_magic(data: bytes) -> bool:
    """True when the bytes start like an accepted format (so a failure means damage, not a wrong type)."""
    return data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _load(image: Image.Image, max_side: int) -> DecodedImage:
    try:
        orientation = image.getexif().get(0x0112, 1)
        transposed = orientation in (5, 6, 7, 8)
        width, height = (image.height, image.width) if transposed else image.size
        if image.format == "JPEG" and max(width, height) > max_side:
            # JPEG can decode at 1/2, 1/4, 1/8 directly: far less time and memory for phone photos.
            image.draft("RGB", (max_side, max_side))
        image.load()
        image = ImageOps.exif_transpose(image) or image
        rgb_image = _to_rgb(image)
    except (OSError, ValueError, SyntaxError, struct.error) as err:
        raise InvalidImageError(f"the image data is damaged or truncated: {err}") from err
    if max(rgb_image.size) > max_side:
        rgb_image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    scale = rgb_image.width / width
    return DecodedImage(np.asarray(rgb_image), width, height, scale, str(image.format or "UNKNOWN"))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (P, LA, RGBA, CMYK, I;16, F, 1) to RGB; transparency is composited onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        span = float(array.max() - array.min()) or 1.0
        return Image.fromarray(((array - array.min()) * (255.0 / span)).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
