"""Image transforms with MMSegmentation's (mmcv's) rounding, on (H, W, C) uint8 arrays."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from .imagenet import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["scale_size", "rescale_size", "imrescale", "to_input"]


def scale_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """``(width, height)`` scaled by ``factor`` and rounded half up, as mmcv does."""
    return int(width * float(factor) + 0.5), int(height * float(factor) + 0.5)


def rescale_size(width: int, height: int, scale: float | Sequence[int]) -> tuple[int, int]:
    """New ``(width, height)`` keeping the aspect ratio: a factor, or the largest size that fits
    ``scale`` (long edge <= max(scale), short edge <= min(scale)), as ``mmcv.rescale_size``."""
    if isinstance(scale, (int, float)):
        factor = float(scale)
    else:
        if len(scale) != 2 or min(scale) <= 0:
            raise ValueError(f"scale must be a positive factor or a (long, short) pair of sizes, got {scale!r}")
        factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    if factor <= 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    return scale_size(width, height, factor)


def imrescale(image: np.ndarray, scale: float | Sequence[int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resize keeping the aspect ratio (see :func:`rescale_size`); bilinear by default."""
    height, width = image.shape[:2]
    size = rescale_size(width, height, scale)
    if size == (width, height):
        return image
    return cv2.resize(image, size, interpolation=interpolation)


def to_input(
    image: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """(H, W, 3) RGB array in 0..255 -> normalized (3, H, W) float32 tensor."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (x - m) / s
