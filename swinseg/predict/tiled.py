"""Segmenting TIFF/BigTIFF images too large to hold (remote-sensing scenes, gigapixel scans) at
their native resolution, in memory that does not grow with the image's height.

The semantics are MMSegmentation's slide inference over the whole image: a grid of
``crop`` x ``crop`` windows every ``stride`` pixels, the last row and column clamped to the
bottom/right edge, each window's logits resized to the window and summed into place, the sums
divided by the number of windows covering each pixel. Only the order of work changes: window
rows are read and inferred top to bottom, their decode-head logits (1/4 resolution) kept while an
output band needs them, and the label map is written as a tiled TIFF band by band. A pixel's sum
adds the same windows in the same order as :meth:`EncoderDecoder.slide_inference`, so the labels
equal the in-memory path at the same (native) scale.

Memory: the image band of one window row (crop x width x 3 bytes), the 1/4-resolution logits of
the windows one output block touches (about 3 x (block / stride + 2) x classes x (crop / 4)^2
floats; the others wait in a scratch folder beside the output), one window's logits at full
resolution (classes x crop^2 floats) and one output block (classes x tile x block floats): for
a 150-class head at crop 512, tile 256, block 1024, about 0.5 GB besides the model, at any scene
size.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.io import label_dtype, quantize_confidence
from ..data.tiff import TiffReader, write_tiled
from ..data.transforms import to_input
from ..files import atomic_write
from ..models.heads import resize
from ..models.segmentor import slide_grid
from ..progress import progress_bar
from .images import input_placement, is_segmentor, summarize
from .options import PredictOptions, as_options

__all__ = ["predict_tiff"]


class _WindowLogits:
    """The 1/4-resolution logits of every window, computed once, a window row at a time, and
    kept in a scratch folder until no later band needs them. In memory are only the windows of
    the output block being made: memory does not grow with the scene's width or class count
    (a 24000-pixel-wide row of 150-class windows is 0.7 GB of logits)."""

    def __init__(self, model: Any, reader: TiffReader, rows: list[tuple[int, int]], cols: list[tuple[int, int]], scratch: Path) -> None:
        self.model, self.reader, self.rows, self.cols, self.scratch = model, reader, rows, cols, scratch
        self.computed: set[int] = set()
        self.loaded: dict[tuple[int, int], Tensor] = {}
        pre = model.preprocessing
        self.mean, self.std = pre.mean, pre.std
        self.device, self.dtype = input_placement(model)

    def _path(self, i: int, j: int) -> Path:
        return self.scratch / f"window_{i}_{j}.npy"

    @torch.no_grad()
    def _compute_row(self, i: int) -> None:
        y1, y2 = self.rows[i]
        band = self.reader.read_rows(y1, y2)
        for j, (x1, x2) in enumerate(self.cols):
            logits = self.model.decode(to_input(band[:, x1:x2], self.mean, self.std)[None].to(self.device, self.dtype))[0]
            np.save(self._path(i, j), logits.cpu().numpy())
        self.computed.add(i)

    def window(self, i: int, j: int) -> Tensor:
        """(C, h, w) logits of window ``(i, j)``, computed with its row when first needed."""
        if (i, j) not in self.loaded:
            if i not in self.computed:
                self._compute_row(i)
            self.loaded[i, j] = torch.from_numpy(np.load(self._path(i, j))).to(self.device)
        return self.loaded[i, j]

    def release_left_of(self, x: int) -> None:
        """Forget the loaded windows that end left of ``x`` (the band's later blocks lie right of it)."""
        for key in [key for key in self.loaded if self.cols[key[1]][1] <= x]:
            del self.loaded[key]

    def drop_above(self, top: int) -> None:
        """Delete the windows of the rows that end above ``top`` (no later band needs them)."""
        self.loaded.clear()
        for i in [i for i in self.computed if self.rows[i][1] <= top]:
            for j in range(len(self.cols)):
                self._path(i, j).unlink()
            self.computed.discard(i)


def _block_scores(windows: _WindowLogits, top: int, bottom: int, left: int, right: int) -> Tensor:
    """(C, bottom - top, right - left) slide-averaged logits of one output block. A window's
    logits are resized again for each block it touches (a few times): holding them resized would
    cost classes x crop^2 floats per window of the row."""
    model, total, count = windows.model, None, None
    for i, (y1, y2) in enumerate(windows.rows):
        if y2 <= top or y1 >= bottom:
            continue
        for j, (x1, x2) in enumerate(windows.cols):
            if x2 <= left or x1 >= right:
                continue
            logits = resize(windows.window(i, j)[None], (y2 - y1, x2 - x1), model.align_corners)[0]
            if total is None:
                total = logits.new_zeros((logits.shape[0], bottom - top, right - left))
                count = logits.new_zeros((1, bottom - top, right - left))
            ys, xs = slice(max(y1, top), min(y2, bottom)), slice(max(x1, left), min(x2, right))
            total[:, ys.start - top : ys.stop - top, xs.start - left : xs.stop - left] += logits[
                :, ys.start - y1 : ys.stop - y1, xs.start - x1 : xs.stop - x1
            ]
            count[:, ys.start - top : ys.stop - top, xs.start - left : xs.stop - left] += 1
    windows.release_left_of(right)
    return total.div_(count)


def _tiles(band: np.ndarray, tile: int) -> Iterator[np.ndarray]:
    """(tile, tile) pieces of a (rows <= tile, width) band, left to right, zero-padded at the edges."""
    for left in range(0, band.shape[1], tile):
        piece = band[:, left : left + tile]
        if piece.shape != (tile, tile):
            piece = np.pad(piece, ((0, tile - piece.shape[0]), (0, tile - piece.shape[1])))
        yield piece


def predict_tiff(
    model: Any,
    source: str | os.PathLike,
    dest: str | os.PathLike,
    options: PredictOptions | None = None,
    *,
    tile: int = 256,
    block: int = 1024,
    progress: bool = True,
) -> dict:
    """Segment the TIFF/BigTIFF ``source`` at its native resolution into ``dest``, a tiled TIFF
    of class ids (BigTIFF when needed) with ``source``'s georeferencing tags; with the options'
    ``confidence``, also ``<dest stem>_conf.tif`` (``confidence_bits``). Slide windows are the
    options' ``crop``/``stride`` over the model's ``test_cfg``. Returns what was done: size,
    windows, seconds."""
    options = as_options(options)
    if not is_segmentor(model):
        raise ValueError("predict_tiff needs a segmentor")
    if options.tta or options.topk or options.entropy or options.mode == "whole":
        asked = "tta" if options.tta else "topk" if options.topk else "entropy" if options.entropy else "mode 'whole'"
        raise ValueError(f"a TIFF streamed at native resolution is segmented by slide windows without {asked} (confidence works)")
    _, (crop, _), (stride, _) = options.windows(model.test_cfg)
    confidence_bits = options.bits
    if tile <= 0 or block <= 0 or tile % 16 or block % tile:
        raise ValueError(f"tile must be a positive multiple of 16 and block a multiple of tile; got {tile}, {block}")
    if isinstance(model, torch.nn.Module):
        model.eval()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with TiffReader(source) as reader, tempfile.TemporaryDirectory(dir=dest.parent) as scratch:
        height, width = reader.height, reader.width
        windows = _WindowLogits(model, reader, slide_grid(height, crop, stride), slide_grid(width, crop, stride), Path(scratch))
        ids = label_dtype(model.num_classes)
        conf_type = np.uint8 if confidence_bits == 8 else np.uint16
        raw = Path(scratch) / "confidence.raw"
        bar = progress_bar(total=height, desc="predict", unit="row", enabled=progress)

        def label_tiles() -> Iterator[np.ndarray]:
            with open(raw, "wb") as conf_file:
                for top in range(0, height, tile):
                    bottom = min(top + tile, height)
                    labels = np.empty((bottom - top, width), ids)
                    confidence = np.empty((bottom - top, width), conf_type) if confidence_bits else None
                    for left in range(0, width, block):
                        right = min(left + block, width)
                        scores = _block_scores(windows, top, bottom, left, right)
                        out = summarize(scores, scores.shape[1:], model.align_corners, confidence=bool(confidence_bits))
                        labels[:, left:right] = out.labels.numpy()
                        if confidence is not None:
                            confidence[:, left:right] = quantize_confidence(out.confidence, confidence_bits)
                    windows.drop_above(bottom)
                    if confidence is not None:
                        conf_file.write(confidence.tobytes())
                    bar.update(bottom - top)
                    yield from _tiles(labels, tile)

        def conf_tiles() -> Iterator[np.ndarray]:
            row_bytes = width * np.dtype(conf_type).itemsize
            with open(raw, "rb") as f:
                for top in range(0, height, tile):
                    rows = min(tile, height - top)
                    yield from _tiles(np.frombuffer(f.read(rows * row_bytes), conf_type).reshape(rows, width), tile)

        geo, big = reader.geo_tags, reader.bigtiff
        atomic_write(dest, lambda tmp: write_tiled(tmp, label_tiles(), (height, width), ids, tile, geo, big))
        bar.close()
        if confidence_bits:
            conf_path = dest.with_name(f"{dest.stem}_conf{dest.suffix}")
            atomic_write(conf_path, lambda tmp: write_tiled(tmp, conf_tiles(), (height, width), conf_type, tile, geo, big))
    windows_total = len(windows.rows) * len(windows.cols)
    return {"height": height, "width": width, "windows": windows_total, "seconds": time.perf_counter() - start}
