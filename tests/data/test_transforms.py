"""Resizing with mmcv's rounding, checked on hand-computed sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swinseg.data.transforms import imrescale, rescale_size, scale_size, to_input


@pytest.mark.parametrize(
    "width,height,scale,expected",
    [
        (683, 512, (2048, 512), (683, 512)),  # already fits: factor 1
        (2000, 100, (2048, 512), (2048, 102)),  # long side binds: 1.024, 102.4 -> 102
        (300, 120, (2048, 512), (1280, 512)),  # short side binds: 512 / 120
        (683, 512, 0.5, (342, 256)),  # 341.5 rounds half up
        (37, 300, (2048, 512), (253, 2048)),  # portrait: the long side binds, 37 * 2048 / 300 = 252.6
    ],
)
def test_rescale_size(width, height, scale, expected):
    assert rescale_size(width, height, scale) == expected


def test_tta_scale_is_rounded_twice():
    """Ratio 0.45 of 10 x 3: target (int(5.0), int(1.85)) = (5, 1); fitting 10 x 3 into it binds the
    short side (factor 1/3), giving (3, 1) where one rounding would give (5, 1)."""
    target = scale_size(10, 3, 0.45)
    assert target == (5, 1)
    assert rescale_size(10, 3, target) == (3, 1)


def test_imrescale_and_normalize():
    image = np.full((10, 20, 3), 200, np.uint8)
    out = imrescale(image, (40, 20))
    assert out.shape == (20, 40, 3) and (out == 200).all()
    x = to_input(out, mean=(100.0, 0.0, 50.0), std=(50.0, 1.0, 2.0))
    assert x.shape == (3, 20, 40)
    assert torch.allclose(x[:, 0, 0], torch.tensor([2.0, 200.0, 75.0]))
