"""Image transforms with MMSegmentation's (mmcv's) semantics and rounding, on (H, W, 3) uint8 RGB
images and (H, W) uint8 label maps. Random transforms draw from a ``numpy.random.Generator``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..configs.defaults import IMAGENET_MEAN, IMAGENET_STD
from ..configs.rules import PROBABILITY

__all__ = [
    "scale_size",
    "rescale_size",
    "imrescale",
    "to_input",
    "resize_center_crop",
    "Preprocessing",
    "random_resize",
    "random_crop",
    "random_flip",
    "photometric_distortion",
    "pad_batch",
]


def scale_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """``(width, height)`` scaled by ``factor`` and rounded half up, as mmcv does; at least 1
    (where mmcv would hand OpenCV an empty size for a very elongated image)."""
    return max(int(width * float(factor) + 0.5), 1), max(int(height * float(factor) + 0.5), 1)


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


def to_input(image: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """(H, W, 3) RGB array in 0..255 -> normalized (3, H, W) float32 tensor."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (x - m) / s


def resize_center_crop(image: np.ndarray, size: int, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """The official Swin evaluation resize: the short side to ``int(256 / 224 * size)`` (sizes
    rounded as torchvision does), then the centre ``size`` x ``size`` crop."""
    h, w = image.shape[:2]
    short = int(256 / 224 * size)
    if h <= w:
        new_h, new_w = short, int(short * w / h)
    else:
        new_h, new_w = int(short * h / w), short
    image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = int(round((new_h - size) / 2)), int(round((new_w - size) / 2))
    return image[top : top + size, left : left + size]


_INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its images, as timm's ``pretrained_cfg`` and torchvision's
    ``Weights.transforms`` say it: a resize rule, an interpolation, then normalization by
    ``mean``/``std`` (RGB, 0..255 units).

    ``resize``: ``"keep_ratio"`` fits the image into ``size`` = (long, short) keeping its ratio,
    or scales it by ``size`` when a number (MMSegmentation's test pipeline); ``"center_crop"`` is
    :func:`resize_center_crop` to ``size[0]`` (the official classifier's evaluation).
    """

    resize: str
    size: float | tuple[int, ...]
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.resize not in ("keep_ratio", "center_crop"):
            raise ValueError(f"Preprocessing.resize must be 'keep_ratio' or 'center_crop', got {self.resize!r}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"Preprocessing.interpolation must be one of {', '.join(_INTERPOLATIONS)}, got {self.interpolation!r}")

    def __call__(self, image: np.ndarray, scale: float | Sequence[int] | None = None) -> torch.Tensor:
        """(H, W, 3) RGB in 0..255 -> normalized (3, h, w) float32. ``scale`` (a factor or a
        (long, short) size) replaces ``size`` of a keep-ratio rule (test-time augmentation)."""
        flag = _INTERPOLATIONS[self.interpolation]
        if self.resize == "keep_ratio":
            image = imrescale(image, scale if scale is not None else self.size, flag)
        else:
            image = resize_center_crop(image, self.size[0], flag)
        return to_input(image, self.mean, self.std)


def random_resize(
    image: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    scale: Sequence[int] = (2048, 512),
    ratio_range: Sequence[float] = (0.5, 2.0),
) -> tuple[np.ndarray, np.ndarray]:
    """mmcv ``RandomResize(scale, ratio_range, keep_ratio=True)``: the scale times a uniform ratio
    (truncated to int), then a keep-ratio resize into it; bilinear image, nearest labels."""
    ratio = rng.uniform(ratio_range[0], ratio_range[1])
    target = (int(scale[0] * ratio), int(scale[1] * ratio))
    return imrescale(image, target), imrescale(label, target, interpolation=cv2.INTER_NEAREST)


def random_crop(
    image: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    crop_size: Sequence[int] = (512, 512),
    cat_max_ratio: float = 0.75,
    ignore_index: int = 255,
) -> tuple[np.ndarray, np.ndarray]:
    """MMSegmentation's ``RandomCrop``: a random (h, w) window (smaller where the image is); with
    ``cat_max_ratio < 1``, up to 10 windows are tried until one holds more than one class and no
    class above that share of its non-ignored pixels; otherwise the 11th is taken unchecked."""
    h_crop, w_crop = crop_size

    def window() -> tuple[int, int]:
        top = rng.integers(0, max(image.shape[0] - h_crop, 0) + 1)
        left = rng.integers(0, max(image.shape[1] - w_crop, 0) + 1)
        return int(top), int(left)

    top, left = window()
    if cat_max_ratio < 1.0:
        for _ in range(10):
            values, counts = np.unique(label[top : top + h_crop, left : left + w_crop], return_counts=True)
            counts = counts[values != ignore_index]
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            top, left = window()
    return image[top : top + h_crop, left : left + w_crop], label[top : top + h_crop, left : left + w_crop]


def random_flip(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, prob: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal flip of image and label together with probability ``prob`` (copies: a flipped
    view of a one-pixel-wide crop keeps a negative stride that torch cannot take)."""
    if not PROBABILITY.holds(prob):
        raise ValueError(f"flip prob={prob!r}: must be {PROBABILITY}")
    if rng.random() < prob:
        return image[:, ::-1].copy(), label[:, ::-1].copy()
    return image, label


def _convert(x: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    return np.clip(x.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness_delta: int = 32,
    contrast_range: Sequence[float] = (0.5, 1.5),
    saturation_range: Sequence[float] = (0.5, 1.5),
    hue_delta: int = 18,
) -> np.ndarray:
    """MMSegmentation's ``PhotoMetricDistortion``, each step with probability 1/2: brightness
    (+U(-32, 32)), contrast (xU(0.5, 1.5)) first or last at random, saturation (xU(0.5, 1.5) in
    HSV), hue (+randint(-18, 18) mod 180 in OpenCV's HSV); uint8 clipping after each."""
    if rng.integers(2):
        image = _convert(image, beta=rng.uniform(-brightness_delta, brightness_delta))
    contrast_first = bool(rng.integers(2))

    def contrast(img: np.ndarray) -> np.ndarray:
        return _convert(img, alpha=rng.uniform(*contrast_range)) if rng.integers(2) else img

    if contrast_first:
        image = contrast(image)
    if rng.integers(2):
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[:, :, 1] = _convert(hsv[:, :, 1], alpha=rng.uniform(*saturation_range))
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.integers(2):
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + rng.integers(-hue_delta, hue_delta)) % 180
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if not contrast_first:
        image = contrast(image)
    return image


def pad_batch(
    inputs: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    size: Sequence[int] = (512, 512),
    pad_val: float = 0.0,
    seg_pad_val: int = 255,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack normalized (3, h, w) inputs and (h, w) labels, padding bottom/right to at least
    ``size`` (and to the largest in the batch): ``pad_val`` for images, ``seg_pad_val`` for labels
    (MMSegmentation's ``SegDataPreProcessor``, which pads after normalizing)."""
    height = max(size[0], *(x.shape[-2] for x in inputs))
    width = max(size[1], *(x.shape[-1] for x in inputs))
    images = torch.full((len(inputs), inputs[0].shape[0], height, width), float(pad_val), dtype=inputs[0].dtype)
    targets = torch.full((len(labels), height, width), seg_pad_val, dtype=torch.int64)
    for i, (x, y) in enumerate(zip(inputs, labels, strict=True)):
        images[i, :, : x.shape[-2], : x.shape[-1]] = x
        targets[i, : y.shape[-2], : y.shape[-1]] = y
    return images, targets
