"""ImageNet classification input and class names."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from ..configs.defaults import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["classification_input", "imagenet_classes"]


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1K class names in label order."""
    return tuple((Path(__file__).with_name("imagenet_classes.txt")).read_text().splitlines())


def classification_input(image: np.ndarray, size: int) -> torch.Tensor:
    """The official evaluation transform: resize the short side to ``int(256 / 224 * size)``
    (bicubic, sizes rounded as torchvision does), centre-crop ``size`` x ``size``, normalize. (H, W, 3) uint8 RGB -> (3, size, size)."""
    h, w = image.shape[:2]
    short = int(256 / 224 * size)
    if h <= w:
        new_h, new_w = short, int(short * w / h)
    else:
        new_h, new_w = int(short * h / w), short
    image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
    top, left = int(round((new_h - size) / 2)), int(round((new_w - size) / 2))
    crop = image[top : top + size, left : left + size].astype(np.float32)
    crop = (crop - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(crop).permute(2, 0, 1).contiguous()
