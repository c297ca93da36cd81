"""A synthetic scene-parsing dataset in ADE20K's layout, made offline in seconds: textured
shapes over a sky/ground scene, overlapping one another, with unlabeled clutter (label 0, as
ADE20K's "other", removed by ``reduce_zero_label``). Colours are jittered per object, so telling
the classes apart takes texture and shape, not colour alone."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..progress import progress_bar

__all__ = ["CLASSES", "PALETTE", "make_scene", "write_dataset"]

CLASSES = ("sky", "ground", "disc", "brick box", "striped triangle", "dotted blob", "checker polygon")
PALETTE = ((70, 130, 180), (152, 251, 152), (220, 20, 60), (180, 90, 40), (250, 170, 30), (120, 60, 220), (0, 160, 160))
# the second colour of each object texture (rings, mortar, stripes, dots, squares)
_SECOND = {3: (235, 235, 235), 4: (200, 200, 200), 5: (20, 40, 120), 6: (240, 230, 80), 7: (20, 20, 20)}
_FILL = 2  # label values: 0 other, 1 sky, 2 ground, 3.. the objects


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], spread: int = 40) -> np.ndarray:
    return np.clip(np.array(rgb) + rng.integers(-spread, spread + 1, 3), 0, 255).astype(np.float32)


def _texture(kind: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float texture of object class ``kind`` (label value)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = _jitter(rng, PALETTE[kind - 1])
    other = _jitter(rng, _SECOND.get(kind, (0, 0, 0)), 40)
    if kind == 1:  # sky: vertical gradient
        t = (yy / max(h - 1, 1))[..., None]
        return base * (1 - 0.5 * t) + 255 * 0.5 * t
    if kind == 2:  # ground: speckled noise
        return base * (0.7 + 0.6 * rng.random((h, w, 1), dtype=np.float32))
    period = rng.uniform(5, 9)
    if kind == 3:  # disc: concentric rings
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        mask = np.sin(np.hypot(yy - cy, xx - cx) * 2 * np.pi / period) > 0
    elif kind == 4:  # bricks: offset rows
        row = (yy // period).astype(int)
        mask = ((yy % period) < 1.5) | (((xx + (row % 2) * period) % (2 * period)) < 1.5)
    elif kind == 5:  # diagonal stripes
        mask = np.sin((xx + yy) * 2 * np.pi / period) > 0
    elif kind == 6:  # dots
        mask = np.hypot((yy % period) - period / 2, (xx % period) - period / 2) < period / 4
    else:  # checkerboard
        mask = ((xx // period).astype(int) + (yy // period).astype(int)) % 2 == 0
    return np.where(mask[..., None], base, other)


def _shape_mask(kind: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    size = rng.uniform(0.12, 0.3) * min(h, w)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    if kind == 3:
        cv2.circle(mask, (int(cx), int(cy)), int(size), 1, -1)
    elif kind == 4:
        box = cv2.boxPoints(((cx, cy), (size * rng.uniform(1.2, 2.2), size * rng.uniform(0.8, 1.4)), rng.uniform(-20, 20)))
        cv2.fillPoly(mask, [box.astype(np.int32)], 1)
    elif kind == 5:
        angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2]) + rng.uniform(-0.3, 0.3, 3)
        pts = np.stack([cx + size * 1.4 * np.cos(angles), cy + size * 1.4 * np.sin(angles)], 1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    elif kind == 6:
        cv2.ellipse(mask, ((cx, cy), (size * rng.uniform(1.5, 2.5), size * rng.uniform(1.0, 1.6)), rng.uniform(0, 180)), 1, -1)
    else:
        n = int(rng.integers(5, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = size * rng.uniform(0.7, 1.3, n)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    return mask.astype(bool)


def make_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 RGB image and its (H, W) uint8 label map (0 = unlabeled, k = class k-1)."""
    image = np.zeros((height, width, 3), np.float32)
    label = np.zeros((height, width), np.uint8)
    horizon = int(rng.uniform(0.25, 0.6) * height)
    for kind, rows in ((1, slice(0, horizon)), (2, slice(horizon, height))):
        image[rows] = _texture(kind, (height, width), rng)[rows]
        label[rows] = kind
    for _ in range(int(rng.integers(2, 6))):
        kind = int(rng.integers(_FILL + 1, len(CLASSES) + 1))
        mask = _shape_mask(kind, (height, width), rng)
        image[mask] = _texture(kind, (height, width), rng)[mask]
        label[mask] = kind
    for _ in range(int(rng.integers(0, 3))):  # unlabeled clutter
        mask = np.zeros((height, width), np.uint8)
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.circle(mask, centre, int(rng.uniform(0.03, 0.08) * min(height, width)), 1, -1)
        image[mask.astype(bool)] = rng.uniform(0, 255, 3)
        label[mask.astype(bool)] = 0
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_dataset(root: str | Path, train: int = 160, val: int = 40, seed: int = 0, size: tuple[int, int] = (192, 256)) -> Path:
    """Write ``root/images/{training,validation}/*.jpg`` and ``root/annotations/...*.png``
    (ADE20K's layout); sizes vary by up to 25% around ``size`` (H, W). Returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("training", train), ("validation", val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i in progress_bar(range(count), desc=f"synthetic {split}", unit="img", leave=False):
            h = int(size[0] * rng.uniform(0.75, 1.25))
            w = int(size[1] * rng.uniform(0.75, 1.25))
            image, label = make_scene(rng, h, w)
            name = f"synthetic_{split}_{i:05d}"
            cv2.imwrite(
                str(root / "images" / split / f"{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
            )
            cv2.imwrite(str(root / "annotations" / split / f"{name}.png"), label)
    return root
