"""Image quality checks: the contrast figure, blank images refused, dim images equalised."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.errors import LowQualityError
from edge_node.pipeline import quality


def test_contrast_is_the_grey_level_standard_deviation() -> None:
    gray = np.random.default_rng(1).integers(0, 256, (300, 200), dtype=np.uint8)
    assert quality.contrast(gray) == pytest.approx(float(gray.std()), rel=1e-9)
    assert quality.contrast(np.full((40, 40), 200, dtype=np.uint8)) == 0.0


def test_a_blank_image_is_refused_and_a_printed_one_is_not() -> None:
    with pytest.raises(LowQualityError):
        quality.check_readable(quality.contrast(np.full((50, 50), 255, dtype=np.uint8)))
    page = np.full((50, 50), 255, dtype=np.uint8)
    page[20:30, 5:45] = 0
    quality.check_readable(quality.contrast(page))


def test_only_dim_images_are_equalised() -> None:
    rng = np.random.default_rng(2)
    dim = rng.integers(100, 140, (64, 64, 3), dtype=np.uint8)
    crisp = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert quality.enhance_contrast(crisp, quality.contrast(quality.grayscale(crisp))) is crisp
    equalised = quality.enhance_contrast(dim, quality.contrast(quality.grayscale(dim)))
    assert equalised.shape == dim.shape
    assert quality.contrast(quality.grayscale(equalised)) > quality.contrast(quality.grayscale(dim))
