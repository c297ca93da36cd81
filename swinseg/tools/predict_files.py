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
from ..data.tiff import TiffReader
from ..files import atomic_write
from ..models.segmentor import EncoderDecoder
from ..predict import Prediction, predict_outputs
from ..tiled import predict_tiff
from ..video import VIDEO_SUFFIXES, predict_video
from ..visualize import overlay

__all__ = ["IMAGE_SUFFIXES", "TILED_PIXELS", "expand_inputs", "predict_files"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# TIFF images larger than this (an 8192 x 8192 scene) are streamed at native resolution.
TILED_PIXELS = 2**26


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Image and video files from files, folders (searched recursively) and glob patterns, in a stable order."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES and p.is_file())
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


def _pixels(path: Path) -> int:
    try:
        with TiffReader(path) as reader:
            return reader.height * reader.width
    except ValueError:
        return 0  # not a TIFF that tifffile reads: the image reader reports it


class _Names:
    """Output stems: an input's own, then ``_1``, ``_2``... for a name seen before."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, path: Path) -> str:
        stem = path.stem if path.stem not in self.seen else f"{path.stem}_{self.seen[path.stem]}"
        self.seen[path.stem] = self.seen.get(path.stem, 0) + 1
        return stem


def _write_outputs(
    base: Path, rgb: np.ndarray, output: Prediction, model: EncoderDecoder, opacity: float, bits: int, probs: int
) -> np.ndarray:
    """``base``.png, ``base``_overlay.jpg and what was asked for; returns the class ids written."""
    meta = model.dataset_meta
    ids = output.labels.numpy().astype(np.uint8 if model.num_classes <= 256 else np.uint16)
    _write_image(base.with_name(f"{base.name}.png"), ids)
    vis = overlay(rgb, ids, meta["classes"], meta["palette"], opacity)
    _write_image(base.with_name(f"{base.name}_overlay.jpg"), cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
    if bits:
        conf = (output.confidence * (2**bits - 1)).round().numpy().astype(np.uint8 if bits == 8 else np.uint16)
        _write_image(base.with_name(f"{base.name}_conf.png"), conf)
    if probs:
        top = output.topk_classes.numpy().astype(ids.dtype)
        _write_npz(base.with_name(f"{base.name}_probs.npz"), classes=top, probs=output.topk_probs.numpy().astype(np.float16))
    return ids


def predict_files(
    model: EncoderDecoder,
    inputs: Sequence[str],
    out: str | Path,
    tta: bool = False,
    batch_size: int = 1,
    opacity: float = 0.5,
    confidence_bits: int = 0,
    probs: int = 0,
    tiled: bool = False,
    frame_labels: bool = False,
) -> np.ndarray:
    """Segment every image of ``inputs`` into ``out``: ``<name>.png`` (0-based class ids) and
    ``<name>_overlay.jpg``; with ``confidence_bits`` (8 or 16) ``<name>_conf.png``, the
    probability of the predicted class scaled to 0..255 or 0..65535; with ``probs`` K,
    ``<name>_probs.npz`` holding ``classes`` (K, H, W) and ``probs`` (K, H, W) float16, the K most
    probable classes (``classes[0]`` is the label map). TIFF images of more than
    :data:`TILED_PIXELS` pixels (any TIFF with ``tiled``) are streamed at their native resolution
    instead (:func:`swinseg.tiled.predict_tiff`) into ``<name>.tif`` (and ``<name>_conf.tif``),
    without an overlay. Videos go through :func:`swinseg.video.predict_video` into
    ``<name>_overlay.mp4`` (and, with ``frame_labels``, ``<name>_labels/``). A repeated name gets ``_1``, ``_2``... Unreadable images are reported and
    skipped, then named in one error at the end. Returns the pixel count per class of the
    images that were not streamed."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"--opacity must lie in [0, 1], got {opacity}")
    if batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    if confidence_bits not in (0, 8, 16):
        raise ValueError(f"--confidence-bits must be 8 or 16, got {confidence_bits}")
    if not 0 <= probs <= model.num_classes:
        raise ValueError(f"--probs must lie in [1, {model.num_classes}] (the model's classes), got {probs}")
    images = expand_inputs(inputs)
    streamed = [p for p in images if p.suffix.lower() in (".tif", ".tiff") and (tiled or _pixels(p) > TILED_PIXELS)]
    videos = [p for p in images if p.suffix.lower() in VIDEO_SUFFIXES]
    images = [p for p in images if p not in streamed and p not in videos]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names, failed = _Names(), []
    for path in streamed:
        try:
            info = predict_tiff(model, path, out / f"{names(path)}.tif", confidence_bits=confidence_bits)
        except (ValueError, OSError) as e:
            failed.append(str(path))
            print(f"error: {e}", file=sys.stderr)
            continue
        print(
            f"segmented {path} at native resolution ({info['height']} x {info['width']}, {info['windows']} windows) "
            f"in {info['seconds']:.0f} s -> {out}"
        )
    for path in videos:
        try:
            info = predict_video(model, path, out, batch_size=max(batch_size, 4), opacity=opacity, frame_labels=frame_labels)
        except (ValueError, OSError) as e:
            failed.append(str(path))
            print(f"error: {e}", file=sys.stderr)
            continue
        print(
            f"segmented {info['frames']} frames of {path} in {info['seconds']:.1f} s ({info['frames_per_second']:.1f} frames/s) -> {info['video']}"
        )
    failed_streams = len(failed)
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
        wanted = dict(confidence=bool(confidence_bits), topk=probs)
        outputs = predict_outputs(model, rgbs, tta=tta, batch_size=batch_size, **wanted) if rgbs else []
        for path, rgb, output in zip(readable, rgbs, outputs, strict=True):
            ids = _write_outputs(out / names(path), rgb, output, model, opacity, confidence_bits, probs)
            counts += np.bincount(ids.ravel(), minlength=model.num_classes)[: model.num_classes]
    progress.close()
    done = len(images) - (len(failed) - failed_streams)
    _summary(counts, model.dataset_meta["classes"], done, len(images), time.perf_counter() - start, out)
    if failed:
        raise ValueError(f"{len(failed)} image(s) could not be read: {', '.join(failed)}")
    return counts


def _summary(counts: np.ndarray, classes: Sequence[str], done: int, total: int, elapsed: float, out: Path) -> None:
    if not total:
        return
    top = [f"{classes[c]} {counts[c] / max(counts.sum(), 1):.1%}" for c in np.argsort(-counts)[:5] if counts[c]]
    print(f"segmented {done} of {total} images in {elapsed:.1f} s ({elapsed / max(done, 1):.2f} s/image) -> {out}")
    if top:
        print(f"most frequent classes: {', '.join(top)}")
