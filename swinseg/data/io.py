"""Reading images as MMSegmentation does (OpenCV, BGR on disk, RGB in memory), and writing them
so that no reader ever sees a half-written file."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
import torch

from ..files import atomic_write

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageLike",
    "as_rgb",
    "label_dtype",
    "quantize_confidence",
    "read_image",
    "write_confidence",
    "write_extras",
    "write_image",
    "write_npz",
    "decode_image",
]

ImageLike = Union[str, os.PathLike, np.ndarray, torch.Tensor]
# What a folder of images holds (predict's inputs, INT8 calibration).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` (as OpenCV takes it: BGR, grey, 8 or 16-bit) by ``path``'s suffix and
    write it atomically (:func:`swinseg.files.atomic_write`)."""
    ok, data = cv2.imencode(path.suffix, image)
    if not ok:
        raise OSError(f"cannot encode {path}")
    atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def label_dtype(num_classes: int) -> type[np.integer]:
    """The integer type label maps are written in: 8 bits up to 256 classes, else 16."""
    return np.uint8 if num_classes <= 256 else np.uint16


def quantize_confidence(confidence: torch.Tensor, bits: int) -> np.ndarray:
    """Probabilities in [0, 1] as integers of ``bits`` (8 or 16): p x 255 or p x 65535, rounded."""
    return (confidence * (2**bits - 1)).round().numpy().astype(np.uint8 if bits == 8 else np.uint16)


def write_confidence(path: Path, confidence: torch.Tensor, bits: int) -> None:
    """(H, W) probabilities in [0, 1] as a grey PNG of ``bits`` (8 or 16) bits (:func:`quantize_confidence`)."""
    write_image(path, quantize_confidence(confidence, bits))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Compressed ``.npz`` of ``arrays``, written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def write_extras(base: Path, output: Any, bits: int, probs: int, ids: np.dtype) -> None:
    """From a :class:`swinseg.predict.Prediction` ``output``: ``base``_conf.png (with ``bits``),
    the confidence map, and ``base``_probs.npz (with ``probs``), the top-K classes (``ids``: their
    integer type) with float16 probabilities."""
    if bits:
        write_confidence(base.with_name(f"{base.name}_conf.png"), output.confidence, bits)
    if probs:
        top = output.topk_classes.numpy().astype(ids)
        write_npz(base.with_name(f"{base.name}_probs.npz"), classes=top, probs=output.topk_probs.numpy().astype(np.float16))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an (H, W, 3) uint8 RGB array; a clear error names the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ValueError(f"image {path} is empty")
    return decode_image(data, str(path))


def decode_image(data: bytes | np.ndarray, name: str = "the image") -> np.ndarray:
    """An encoded image (a file's bytes) as an (H, W, 3) uint8 RGB array, as files are read;
    empty or undecodable bytes are an error naming ``name``."""
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if data.size == 0:
        raise ValueError(f"{name} is empty")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode {name} as an image (corrupt or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def as_rgb(image: ImageLike) -> np.ndarray:
    """An (H, W, 3) RGB array in 0..255 from a path, an (H, W[, 3]) array or a (3, H, W) tensor."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"an image tensor must be (3, H, W) RGB in 0..255, got shape {tuple(image.shape)}")
        image = image.detach().cpu().permute(1, 2, 0).numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected an image path, array or tensor, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"an image array must be (H, W, 3) RGB or (H, W) gray, got shape {image.shape}")
    if min(image.shape[:2]) == 0:
        raise ValueError(f"image has zero size: {image.shape}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("image contains NaN or Inf values")
    return image
