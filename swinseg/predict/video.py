"""Segmenting a video, as MMSegmentation's ``demo/video_demo.py`` does: frames read with OpenCV,
segmented in batches, written back as an overlaid video of the same size and frame rate, and
optionally the label map of every frame. Memory holds one batch of frames."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.io import label_dtype, write_extras, write_image
from ..files import atomic_write
from ..progress import progress_bar
from ..visualize import overlay
from .images import predict_outputs
from .options import PredictOptions, as_options

__all__ = ["VIDEO_SUFFIXES", "predict_video"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _frames(capture: cv2.VideoCapture, batch_size: int) -> Iterator[list[np.ndarray]]:
    """Batches of RGB frames until the stream ends."""
    batch: list[np.ndarray] = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        batch.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_video(
    model: Any,
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: PredictOptions | None = None,
    *,
    opacity: float = 0.5,
    frame_labels: bool = False,
    progress: bool = True,
) -> dict:
    """Segment every frame of ``source`` into ``out_dir``: ``<name>_overlay.mp4`` (same size and
    frame rate, written to a temporary file and renamed when complete) and, with
    ``frame_labels``, ``<name>_labels/<frame>.png`` (class ids). Frames are read in batches of
    the options' ``batch_size`` and segmented by the options (TTA, windows); their
    ``confidence`` and ``topk`` add ``<name>_labels/<frame>_conf.png`` and ``<frame>_probs.npz``,
    as for still images. Returns frames, seconds and frames per second."""
    options = as_options(options)
    source, out_dir = Path(source), Path(out_dir)
    if not source.is_file():
        raise FileNotFoundError(f"video {source} does not exist")
    batch_size, confidence_bits, probs = options.batch_size, options.bits, options.topk
    capture = cv2.VideoCapture(str(source))
    try:
        if not capture.isOpened():
            raise ValueError(f"cannot open video {source} (corrupt, or a codec OpenCV cannot read)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        meta = model.dataset_meta
        labels_dir = out_dir / f"{source.stem}_labels"
        if frame_labels or confidence_bits or probs:
            labels_dir.mkdir(parents=True, exist_ok=True)
        count, start = 0, time.perf_counter()
        bar = progress_bar(total=total, desc="video", unit="frame", enabled=progress)

        def write(tmp: Path) -> None:
            nonlocal count
            writer = None
            try:
                for batch in _frames(capture, batch_size):
                    if writer is None:
                        height, width = batch[0].shape[:2]
                        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                        if not writer.isOpened():
                            raise OSError(f"cannot write {tmp.name}: OpenCV has no MPEG-4 encoder here")
                    outputs = predict_outputs(model, batch, options)
                    for rgb, output in zip(batch, outputs, strict=True):
                        ids = output.labels.numpy().astype(label_dtype(model.num_classes))
                        vis = overlay(rgb, ids, meta["classes"], meta["palette"], opacity, legend=False)
                        writer.write(cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
                        if frame_labels:
                            write_image(labels_dir / f"{count:06d}.png", ids)
                        write_extras(labels_dir / f"{count:06d}", output, confidence_bits, probs, ids.dtype)
                        count += 1
                    bar.update(len(batch))
            finally:
                if writer is not None:
                    writer.release()
            if writer is None:
                raise ValueError(f"video {source} has no readable frames (corrupt, or a codec OpenCV cannot read)")

        dest = atomic_write(out_dir / f"{source.stem}_overlay.mp4", write, keep_suffix=True)
        bar.close()
    finally:
        capture.release()
    seconds = time.perf_counter() - start
    return {"frames": count, "fps": fps, "seconds": seconds, "frames_per_second": count / seconds, "video": str(dest)}
