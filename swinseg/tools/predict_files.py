"""``swinseg predict`` as a library function: images, folders or globs in; a label map (PNG of
class ids) and a colour overlay per image out; a summary of what was segmented."""

from __future__ import annotations

import glob
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
from ..predict import predict
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


def predict_files(
    model: EncoderDecoder, inputs: Sequence[str], out: str | Path, tta: bool = False, batch_size: int = 1, opacity: float = 0.5
) -> np.ndarray:
    """Segment every image of ``inputs`` into ``out``: ``<name>.png`` (0-based class ids) and
    ``<name>_overlay.jpg``; a repeated name gets ``_1``, ``_2``... Unreadable images are
    reported and skipped, then named in one error at the end. Returns the pixel count per class."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"--opacity must lie in [0, 1], got {opacity}")
    if batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    images = expand_inputs(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes, palette = model.dataset_meta["classes"], model.dataset_meta["palette"]
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
        labels = predict(model, rgbs, tta=tta, batch_size=batch_size) if rgbs else []
        for path, rgb, label in zip(readable, rgbs, labels, strict=True):
            ids = label.numpy().astype(np.uint8 if model.num_classes <= 256 else np.uint16)
            stem = path.stem if path.stem not in stems else f"{path.stem}_{stems[path.stem]}"
            stems[path.stem] = stems.get(path.stem, 0) + 1
            _write_image(out / f"{stem}.png", ids)
            _write_image(out / f"{stem}_overlay.jpg", cv2.cvtColor(overlay(rgb, ids, classes, palette, opacity), cv2.COLOR_RGB2BGR))
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
