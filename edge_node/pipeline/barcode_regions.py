"""Where a linear barcode may be in a photo: OpenCV's barcode localiser, for retries on that part alone.

A code the decoders missed on the whole photo is often small in it (a product held at arm's length): the retries
do better on its region, cut out with a margin and upscaled, than on the whole photo, and a region costs a
fraction of the photo's time. OpenCV's localiser (`cv2.barcode.BarcodeDetector.detect`, gradient orientation
coherence, about 6 ms on a 1280x720 photo) only says where bars are; the decoders still read them, and their
reads still need the votes every retry read needs.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

#: Margin added around a found region: the localiser's box can clip the quiet zone and the first bars.
MARGIN_ACROSS = 0.25  # of the width (across the bars)
MARGIN_ALONG = 0.5  # of the height
MARGIN_MIN_PX = 8
#: Regions smaller than this (pixels) are noise; more than this many are not tried.
MIN_REGION_PIXELS = 400
MAX_REGIONS = 3
#: Smaller images (a price-tag crop is ~10,000 px) are not searched, 1 ms saved: a code fills much of them, and
#: the whole-photo retries already upscale them. (At 160,000 px, 3 photos of the barcode set were lost.)
MIN_IMAGE_PIXELS = 40_000

_local = threading.local()

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the image


def _localiser() -> cv2.barcode.BarcodeDetector:
    detector: cv2.barcode.BarcodeDetector | None = getattr(_local, "detector", None)
    if detector is None:
        detector = cv2.barcode.BarcodeDetector()
        _local.detector = detector
    return detector


def barcode_regions(gray: np.ndarray) -> list[Box]:
    """Boxes (with margins, inside the image) around bar patterns in a grayscale uint8 image, largest first; none
    for an image under MIN_IMAGE_PIXELS."""
    if gray.size < MIN_IMAGE_PIXELS or not hasattr(cv2, "barcode"):  # an OpenCV build without it: no regions
        return []
    try:
        found, corners = _localiser().detect(gray)
    except cv2.error:
        return []
    if not found or corners is None:
        return []
    height, width = gray.shape[:2]
    boxes: list[Box] = []
    for quad in np.asarray(corners, dtype=np.float32).reshape(-1, 4, 2):
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        w, h = float(x1 - x0), float(y1 - y0)
        if w * h < MIN_REGION_PIXELS:
            continue
        across, along = max(w, h), min(w, h)
        mx = (MARGIN_ACROSS * across if w >= h else MARGIN_ALONG * along) + MARGIN_MIN_PX
        my = (MARGIN_ALONG * along if w >= h else MARGIN_ACROSS * across) + MARGIN_MIN_PX
        boxes.append((max(0, int(x0 - mx)), max(0, int(y0 - my)), min(width, int(x1 + mx) + 1),
                      min(height, int(y1 + my) + 1)))
    boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    return boxes[:MAX_REGIONS]
