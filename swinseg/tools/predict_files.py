"""``swinseg predict`` as a library function: images, folders or globs in; a label map (PNG of
class ids), a colour overlay and, when asked, a confidence map and the top-K classes per image
out; a summary of what was segmented."""

from __future__ import annotations

import glob
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..data import read_image
from ..files import atomic_write
from ..models.segmentor import EncoderDecoder
from ..predict import predict_outputs
from ..visualize import overlay

__all__ = ["IMAGE_SUFFIXES", "expand_inputs", "predict_files"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Image files from files, folders (searched recursively) and glob patterns, in a stable order."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            out.append(path)
        elif glob.has_magic(item):
            out += sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            raise FileNotFoundError(f"input {item} does not exist")
    if not out:
        raise FileNotFoundError(f"no images found in {', '.join(inputs)}")
    return out


def _write_image(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(path.suffix, image)
    if not ok:
        raise OSError(f"cannot encode {path}")
    atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def predict_files(
    model: EncoderDecoder,
    inputs: Sequence[str],
    out: str | Path,
    tta: bool = False,
    batch_size: int = 1,
    opacity: float = 0.5,
    confidence_bits: int = 0,
    probs: int = 0,
) -> np.ndarray:
    """Segment every image of ``inputs`` into ``out``: ``<name>.png`` (0-based class ids) and
    ``<name>_overlay.jpg``; with ``confidence_bits`` (8 or 16) ``<name>_conf.png``, the
    probability of the predicted class scaled to 0..255 or 0..65535; with ``probs`` K,
    ``<name>_probs.npz`` holding ``classes`` (K, H, W) and ``probs`` (K, H, W) float16, the K most
    probable classes (``classes[0]`` is the label map). A repeated name gets ``_1``, ``_2``...
    Unreadable images are reported and skipped, then named in one error at the end. Returns the
    pixel count per class."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"--opacity must lie in [0, 1], got {opacity}")
    if batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    if confidence_bits not in (0, 8, 16):
        raise ValueError(f"--confidence-bits must be 8 or 16, got {confidence_bits}")
    if not 0 <= probs <= model.num_classes:
        raise ValueError(f"--probs must lie in [1, {model.num_classes}] (the model's classes), got {probs}")
    images = expand_inputs(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes, palette = model.dataset_meta["classes"], model.dataset_meta["palette"]
    id_type = np.uint8 if model.num_classes <= 256 else np.uint16
    stems: dict[str, int] = {}
    failed: list[str] = []
    counts = np.zeros(model.num_classes, np.int64)
    start = time.perf_counter()
    progress = tqdm(total=len(images), desc="predict", unit="img", disable=not sys.stderr.isatty())
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size]
        progress.update(len(batch))
        readable, rgbs = [], []
        for path in batch:
            try:
                rgbs.append(read_image(path))
                readable.append(path)
            except (ValueError, FileNotFoundError) as e:
                failed.append(str(path))
                progress.write(f"error: {e}", file=sys.stderr)
        outputs = predict_outputs(model, rgbs, tta=tta, batch_size=batch_size, confidence=bool(confidence_bits), topk=probs) if rgbs else []
        for path, rgb, output in zip(readable, rgbs, outputs, strict=True):
            ids = output.labels.numpy().astype(id_type)
            stem = path.stem if path.stem not in stems else f"{path.stem}_{stems[path.stem]}"
            stems[path.stem] = stems.get(path.stem, 0) + 1
            _write_image(out / f"{stem}.png", ids)
            _write_image(out / f"{stem}_overlay.jpg", cv2.cvtColor(overlay(rgb, ids, classes, palette, opacity), cv2.COLOR_RGB2BGR))
            if confidence_bits:
                scale = 2**confidence_bits - 1
                conf = (output.confidence * scale).round().numpy().astype(np.uint8 if confidence_bits == 8 else np.uint16)
                _write_image(out / f"{stem}_conf.png", conf)
            if probs:
                top = output.topk_classes.numpy().astype(id_type)
                _write_npz(out / f"{stem}_probs.npz", classes=top, probs=output.topk_probs.numpy().astype(np.float16))
            counts += np.bincount(ids.ravel(), minlength=model.num_classes)[: model.num_classes]
    progress.close()
    elapsed = time.perf_counter() - start
    done = len(images) - len(failed)
    top = [f"{classes[c]} {counts[c] / max(counts.sum(), 1):.1%}" for c in np.argsort(-counts)[:5] if counts[c]]
    print(f"segmented {done} of {len(images)} images in {elapsed:.1f} s ({elapsed / max(done, 1):.2f} s/image) -> {out}")
    if top:
        print(f"most frequent classes: {', '.join(top)}")
    if failed:
        raise ValueError(f"{len(failed)} image(s) could not be read: {', '.join(failed)}")
    return counts
