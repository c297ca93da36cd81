"""Reading images as MMSegmentation does: OpenCV, BGR on disk, RGB in memory."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

__all__ = ["read_image"]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an (H, W, 3) uint8 RGB array; a clear error names the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ValueError(f"image {path} is empty")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode {path} as an image (corrupt or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
