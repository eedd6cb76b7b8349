"""Image helpers for the bench: load files as RGB arrays, cut line crops out of a page, encode arrays as PNG.

Line crops follow the SROIE protocol: the axis-aligned bounding rectangle of the quad's 4 points, clipped to the
image (right/bottom edges inclusive, as SROIE's corner coordinates are pixel positions). A quad whose corners are
more than ``ROTATED_TOLERANCE_PX`` away from that rectangle's corners (a rotated or skewed line) is instead
perspective-warped to an upright rectangle of its mean edge lengths. Every line of the shipped SROIE files is
axis-aligned, so the warp only matters for other data.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from bench.datasets import Quad

#: Corners further than this from the bounding rectangle's corners mark a rotated quad (SROIE boxes are exact).
ROTATED_TOLERANCE_PX = 2


def load_rgb(path: Path) -> np.ndarray:
    """The image file as an H x W x 3 uint8 RGB array (no EXIF rotation: ground-truth boxes use raw pixels)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def is_rotated(quad: Quad) -> bool:
    """True when the quad is not (within tolerance) its own axis-aligned rectangle."""
    xs = [x for x, _ in quad]
    ys = [y for _, y in quad]
    rect = ((min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys)))
    return any(
        abs(px - rx) > ROTATED_TOLERANCE_PX or abs(py - ry) > ROTATED_TOLERANCE_PX
        for (px, py), (rx, ry) in zip(quad, rect, strict=True)
    )


def crop_quad(image: np.ndarray, quad: Quad) -> np.ndarray | None:
    """Cut one text line out of ``image``; None when the clipped region is empty."""
    height, width = image.shape[:2]
    if is_rotated(quad):
        return _warp(image, quad)
    xs = [x for x, _ in quad]
    ys = [y for _, y in quad]
    x0, x1 = max(0, min(xs)), min(width, max(xs) + 1)
    y0, y1 = max(0, min(ys)), min(height, max(ys) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def _warp(image: np.ndarray, quad: Quad) -> np.ndarray | None:
    """Perspective-warp a clockwise quad (TL, TR, BR, BL) to an upright rectangle."""
    (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = quad
    out_w = round((np.hypot(trx - tlx, try_ - tly) + np.hypot(brx - blx, bry - bly)) / 2)
    out_h = round((np.hypot(blx - tlx, bly - tly) + np.hypot(brx - trx, bry - try_)) / 2)
    if out_w < 1 or out_h < 1:
        return None
    # PIL's QUAD transform takes the source corners as upper-left, lower-left, lower-right, upper-right.
    source = (tlx, tly, blx, bly, brx, bry, trx, try_)
    warped = Image.fromarray(image).transform(
        (int(out_w), int(out_h)), Image.Transform.QUAD, source, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(warped, dtype=np.uint8).copy()


def encode_png(image: np.ndarray) -> bytes:
    """Encode an RGB uint8 array as PNG bytes (lossless, for sending crops over HTTP)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
