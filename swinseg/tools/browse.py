"""``swinseg browse-data``: what the pipeline feeds the model, as pictures (MMSegmentation's
``browse_dataset.py``): the augmented image, its label over it in the palette, and a legend.

Training samples go through the training pipeline exactly as the loader draws them (the same
per-sample seeds, then padding to the crop size); validation samples through the test pipeline's
resize. Check augmentation and labels here before a long run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..data.dataset import build_dataset, train_pipeline
from ..data.io import write_image
from ..data.loader import TrainSet
from ..data.transforms import imrescale, pad_batch
from ..files import check_writable
from ..models import resolve_config
from ..progress import progress_bar
from ..visualize import ground_truth, panel_row, shown_classes

__all__ = ["browse_dataset"]


def _pixels(x: torch.Tensor, mean: list[float], std: list[float]) -> np.ndarray:
    """A normalized (3, H, W) input -> (H, W, 3) uint8 RGB, as it was before normalization."""
    rgb = x * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    return rgb.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def browse_dataset(config: dict[str, Any], out: str | Path, *, count: int = 20, split: str = "train", progress: bool = True) -> list[Path]:
    """Write the first ``count`` samples of ``split`` ('train' or 'val') of ``config`` as they
    reach the model into ``out`` (``NNN-<image name>.jpg``); returns the files written."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if count < 1:
        raise ValueError(f"count must be 1 or more, got {count}")
    config = resolve_config(config)
    model = config["model"]
    pre = model["data_preprocessor"]
    dataset = build_dataset(config["data"], split, model["decode_head"]["num_classes"], model["ignore_index"])
    out = check_writable(Path(out), "out dir")
    samples = TrainSet(dataset, train_pipeline(config), config["train"]["seed"]) if split == "train" else None
    written = []
    for position in progress_bar(range(count), desc=f"browse {split}", unit="img", enabled=progress):
        index = position % len(dataset)
        if samples is not None:  # the loader's key: the position in the run seeds the augmentation
            x, y, _ = samples[(index, position)]
            x, y = pad_batch([x], [y], pre["size"], pre["pad_val"], pre["seg_pad_val"])
            image, label = _pixels(x[0], pre["mean"], pre["std"]), y[0].numpy()
        else:
            raw, raw_label = dataset[index]
            image = imrescale(raw, model["test_pipeline"]["scale"])
            label = cv2.resize(raw_label.astype(np.int32), image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        zoom = -(-256 // image.shape[0])  # small crops drawn at least 256 px high, pixel for pixel
        if zoom > 1:
            image, label = (np.repeat(np.repeat(a, zoom, 0), zoom, 1) for a in (image, label))
        caption = "augmented" if split == "train" else "at the test scale"
        panels = [(caption, image), ("label", ground_truth(image, label, dataset.palette))]
        picture = panel_row(
            panels, shown_classes(label[label < len(dataset.palette)], label, dataset.palette), dataset.classes, dataset.palette
        )
        path = out / f"{position:03d}-{dataset.samples[index][0].stem}.jpg"
        write_image(path, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        written.append(path)
    return written
