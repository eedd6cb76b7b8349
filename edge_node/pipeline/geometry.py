"""Quads, boxes and crops: the geometry shared by the pipeline stages."""

from __future__ import annotations

import cv2
import numpy as np

from shared_models.ocr import BoundingBox

#: A crop taller than this multiple of its width is vertical text: rotate it to read left to right.
VERTICAL_RATIO = 1.5


def quad_to_box(quad: np.ndarray, scale: float = 1.0) -> BoundingBox:
    """Axis-aligned box around a quad, divided by `scale` (decoded size / original size)."""
    xs, ys = quad[:, 0] / scale, quad[:, 1] / scale
    x0, y0 = int(np.floor(xs.min())), int(np.floor(ys.min()))
    x1, y1 = int(np.ceil(xs.max())), int(np.ceil(ys.max()))
    return BoundingBox(x=max(0, x0), y=max(0, y0), width=max(1, x1 - x0), height=max(1, y1 - y0))


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-warp one text quad to an upright rectangle; this also deskews the line."""
    points = quad.astype(np.float32)
    width = int(max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[2] - points[3])))
    height = int(max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2])))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(points, target)
    crop = cv2.warpPerspective(
        image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if height >= VERTICAL_RATIO * width:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


def sub_quad(quad: np.ndarray, x0: float, x1: float) -> np.ndarray:
    """The part of a quad between fractions x0 and x1 of its width (for word boxes)."""
    top = quad[0] + (quad[1] - quad[0]) * np.array([[x0], [x1]])
    bottom = quad[3] + (quad[2] - quad[3]) * np.array([[x1], [x0]])
    return np.vstack([top, bottom]).astype(np.float32)
