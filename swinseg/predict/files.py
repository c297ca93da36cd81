"""``swinseg predict`` as a library function: images, folders or globs in; a label map (PNG of
class ids), a colour overlay and, when asked, a confidence map and the top-K classes per image
out; a summary of what was segmented."""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import DataLoader, Dataset

from ..data import read_image
from ..data.io import IMAGE_SUFFIXES, label_dtype, write_extras, write_image
from ..data.loader import shard
from ..data.tiff import tiff_size
from ..engine.distributed import get_rank, get_world_size
from ..files import WriteError, check_writable
from ..progress import progress_bar
from ..visualize import overlay
from .images import Prediction, is_segmentor, predict_outputs
from .options import PredictOptions, as_options
from .tiled import predict_tiff
from .video import VIDEO_SUFFIXES, predict_video

__all__ = ["IMAGE_SUFFIXES", "TILED_PIXELS", "expand_inputs", "predict_files"]

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


def _write_outputs(base: Path, rgb: np.ndarray, output: Prediction, model: Any, opacity: float, bits: int, probs: int) -> np.ndarray:
    """``base``.png, ``base``_overlay.jpg and what was asked for; returns the class ids written."""
    meta = model.dataset_meta
    ids = output.labels.numpy().astype(label_dtype(model.num_classes))
    write_image(base.with_name(f"{base.name}.png"), ids)
    vis = overlay(rgb, ids, meta["classes"], meta["palette"], opacity)
    write_image(base.with_name(f"{base.name}_overlay.jpg"), cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
    write_extras(base, output, bits, probs, ids.dtype)
    return ids


class _Files(Dataset):
    """Still images decoded in DataLoader workers: ``(index, RGB array or the error text)``."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | str]:
        try:
            return index, read_image(self.paths[index])
        except (ValueError, FileNotFoundError) as e:
            return index, str(e)


def _stems(paths: list[Path]) -> list[str]:
    """Output stems: an input's own, then ``_1``, ``_2``... for a name seen before."""
    seen: dict[str, int] = {}
    out = []
    for path in paths:
        out.append(path.stem if path.stem not in seen else f"{path.stem}_{seen[path.stem]}")
        seen[path.stem] = seen.get(path.stem, 0) + 1
    return out


def _kind(path: Path, tiled: bool) -> str:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    size = tiff_size(path) if path.suffix.lower() in (".tif", ".tiff") else None
    if size is not None and (tiled or size[0] * size[1] > TILED_PIXELS):  # ordinary TIFFs are read whole, by OpenCV
        return "tiff"
    return "image"


def _outputs(out: Path, stem: str, kind: str, confidence_bits: int, probs: int) -> list[Path]:
    """The files written for one input (the ones ``--skip-existing`` looks for)."""
    if kind == "video":
        return [out / f"{stem}_overlay.mp4"]
    if kind == "tiff":
        return [out / f"{stem}.tif", *([out / f"{stem}_conf.tif"] if confidence_bits else [])]
    extra = ([out / f"{stem}_conf.png"] if confidence_bits else []) + ([out / f"{stem}_probs.npz"] if probs else [])
    return [out / f"{stem}.png", out / f"{stem}_overlay.jpg", *extra]


def predict_files(
    model: Any,
    inputs: Sequence[str],
    out: str | Path,
    options: PredictOptions | None = None,
    *,
    opacity: float = 0.5,
    tiled: bool = False,
    frame_labels: bool = False,
    skip_existing: bool = False,
    workers: int = 2,
) -> np.ndarray:
    """Segment every image of ``inputs`` into ``out`` by ``options``: ``<name>.png`` (0-based
    class ids) and ``<name>_overlay.jpg``; with ``confidence``, ``<name>_conf.png``, the
    probability of the predicted class scaled to 0..255 or 0..65535 (``confidence_bits``); with
    ``topk`` K, ``<name>_probs.npz`` holding ``classes`` (K, H, W) and ``probs`` (K, H, W)
    float16, the K most probable classes (``classes[0]`` is the label map). TIFF images of more
    than :data:`TILED_PIXELS` pixels (any TIFF with ``tiled``) are streamed at their native
    resolution (:func:`~swinseg.predict.tiled.predict_tiff`) into ``<name>.tif`` (and
    ``<name>_conf.tif``). Videos go through :func:`~swinseg.predict.video.predict_video` into
    ``<name>_overlay.mp4`` (and, with ``frame_labels``, ``<name>_labels/``). A repeated name gets
    ``_1``, ``_2``...

    Under ``torchrun`` each process takes every N-th input; the names are the ones one process
    would give. ``skip_existing`` skips inputs whose outputs all exist (a re-run continues an
    interrupted job). Images are decoded in ``workers`` DataLoader processes while the model
    runs. Unreadable inputs are reported and skipped, then named in one error at the end.
    Returns this process's pixel count per class of the still images."""
    options = as_options(options)
    if not is_segmentor(model):
        raise ValueError("predict_files needs a segmentation model (see swinseg models '*upernet*')")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity}")
    if workers < 0:
        raise ValueError(f"workers must be 0 or more, got {workers}")
    if options.topk > model.num_classes:
        raise ValueError(f"topk must lie in [1, {model.num_classes}] (the model's classes), got {options.topk}")
    confidence_bits, probs = options.bits, options.topk
    out = check_writable(Path(out), "output dir")
    paths = expand_inputs(inputs)
    mine = set(shard(len(paths), get_rank(), get_world_size()))
    plan = [(paths[i], stem, _kind(paths[i], tiled)) for i, stem in enumerate(_stems(paths)) if i in mine]
    if skip_existing:
        plan = [item for item in plan if not all(f.is_file() for f in _outputs(out, item[1], item[2], confidence_bits, probs))]
    streamed = next((path for path, _, kind in plan if kind == "tiff"), None)
    if streamed is not None and (options.tta or probs):
        option = "tta" if options.tta else "topk"
        raise ValueError(
            f"{option} is not supported for {streamed}, a TIFF streamed at native resolution (tiled, or over {TILED_PIXELS} "
            f"pixels): segment it without {option} (confidence works)"
        )
    failed: list[str] = []
    for path, stem, kind in plan:
        if kind != "image":
            _stream(model, path, out, stem, kind, failed, options, opacity, frame_labels)
    stills = [(path, stem) for path, stem, kind in plan if kind == "image"]
    start = time.perf_counter()
    counts = _stills(model, stills, out, failed, options, opacity, workers)
    done = len(stills) - sum(1 for path, _ in stills if str(path) in failed)
    _summary(counts, model.dataset_meta["classes"], done, len(stills), time.perf_counter() - start, out)
    if failed:
        raise ValueError(f"{len(failed)} input(s) failed (the others were written): {', '.join(failed)}")
    return counts


def _stream(
    model: Any, path: Path, out: Path, stem: str, kind: str, failed: list[str], options: PredictOptions, opacity: float, frames: bool
) -> None:
    """One huge TIFF or one video, each written as it is read."""
    try:
        if kind == "tiff":
            info = predict_tiff(model, path, out / f"{stem}.tif", options)
            print(
                f"segmented {path} at native resolution ({info['height']} x {info['width']}, {info['windows']} windows) in {info['seconds']:.0f} s -> {out}"
            )
        else:
            batched = replace(options, batch_size=max(options.batch_size, 4))  # frames come in batches of at least 4
            info = predict_video(model, path, out, batched, opacity=opacity, frame_labels=frames)
            print(
                f"segmented {info['frames']} frames of {path} in {info['seconds']:.1f} s ({info['frames_per_second']:.1f} frames/s) -> {info['video']}"
            )
    except WriteError:
        raise  # the disk, not the input: every later write would fail too
    except Exception as e:  # one input's failure never stops the others
        failed.append(str(path))
        print(f"error: {path}: {e}", file=sys.stderr)


def _stills(
    model: Any, stills: list[tuple[Path, str]], out: Path, failed: list[str], options: PredictOptions, opacity: float, workers: int
) -> np.ndarray:
    """Still images in batches of ``batch_size``, decoded by ``workers`` DataLoader processes."""
    counts = np.zeros(model.num_classes, np.int64)
    if not stills:
        return counts
    loader = DataLoader(_Files([p for p, _ in stills]), batch_size=options.batch_size, num_workers=workers, collate_fn=list)
    progress = progress_bar(total=len(stills), desc="predict", unit="img")
    for batch in loader:
        progress.update(len(batch))
        readable = []
        for index, item in batch:
            if isinstance(item, str):
                failed.append(str(stills[index][0]))
                progress.write(f"error: {item}", file=sys.stderr)
            else:
                readable.append((index, item))
        for index, rgb in readable:  # the model computes each image on its own anyway: one failure names one image
            try:
                (output,) = predict_outputs(model, [rgb], options)
                ids = _write_outputs(out / stills[index][1], rgb, output, model, opacity, options.bits, options.topk)
            except WriteError:
                raise  # the disk, not the input: every later write would fail too
            except Exception as e:  # one input's failure never stops the others
                failed.append(str(stills[index][0]))
                progress.write(f"error: {stills[index][0]}: {e}", file=sys.stderr)
                continue
            counts += np.bincount(ids.ravel(), minlength=model.num_classes)[: model.num_classes]
    progress.close()
    return counts


def _summary(counts: np.ndarray, classes: Sequence[str], done: int, total: int, elapsed: float, out: Path) -> None:
    if not total:
        return
    top = [f"{classes[c]} {counts[c] / max(counts.sum(), 1):.1%}" for c in np.argsort(-counts)[:5] if counts[c]]
    print(f"segmented {done} of {total} images in {elapsed:.1f} s ({elapsed / max(done, 1):.2f} s/image) -> {out}")
    if top:
        print(f"most frequent classes: {', '.join(top)}")
