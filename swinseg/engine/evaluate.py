"""Evaluation as MMSegmentation's test loop: each image through the test pipeline (keep-ratio
resize, inference, resize back to the original size), its labels at the original size, IoU
counts summed over images and over processes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import torch

from ..configs import load_config
from ..data.dataset import SegDataset, build_dataset
from ..data.io import write_image
from ..data.loader import shard
from ..files import check_writable
from ..models.factory import build_segmentor
from ..models.segmentor import EncoderDecoder
from ..ops import parse_dtype
from ..predict import PredictOptions, predict
from ..progress import progress_bar
from ..visualize import side_by_side
from ..weights import LoadReport, load_checkpoint
from .distributed import get_rank, get_world_size, rank_zero_first
from .metrics import IoUMetric

__all__ = ["evaluate", "load_for_evaluation"]


def evaluate(
    model: Any,
    dataset: SegDataset,
    options: PredictOptions | None = None,
    *,
    metrics: Sequence[str] = ("mIoU",),
    show_dir: str | Path | None = None,
    progress: bool = True,
) -> IoUMetric:
    """IoU counts, the confusion matrix and per-image scores of ``model`` (a segmentor or a
    runtime of one) on ``dataset`` by ``options`` (this process's shard, then summed over all),
    for MMSegmentation's ``metrics`` (mIoU, mDice, mFscore).

    ``show_dir`` receives ``<name>.jpg`` per image: prediction and ground truth side by side.
    """
    if model.num_classes != dataset.num_classes:
        raise ValueError(f"the model predicts {model.num_classes} classes but the dataset has {dataset.num_classes}")
    metric = IoUMetric(dataset.num_classes, dataset.ignore_index, class_names=dataset.classes, metrics=metrics, images=len(dataset))
    indices = shard(len(dataset), get_rank(), get_world_size())
    if show_dir is not None:
        show_dir = check_writable(Path(show_dir), "show dir")
    bar = progress_bar(indices, desc="test", unit="img", enabled=progress and get_rank() == 0)
    for i in bar:
        image, label = dataset[i]
        prediction = predict(model, image, options)[0]
        metric.update(prediction, torch.from_numpy(label.astype("int64")), index=i)
        if show_dir is not None:
            vis = side_by_side(image, prediction.numpy(), label, dataset.classes, dataset.palette)
            name = dataset.samples[i][0].relative_to(dataset.img_dir).with_suffix(".jpg")
            write_image(show_dir / name, cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
    metric.all_reduce()
    return metric


def load_for_evaluation(
    config_name: str | Path | dict, overrides: list[str] | None, checkpoint: str | None, device: torch.device, dtype: str = "fp32"
) -> tuple[dict, EncoderDecoder, LoadReport | None, SegDataset]:
    """``(config, its segmentor with checkpoint's weights on device in eval mode and in dtype,
    the load report or None, its validation dataset)``; ``config_name`` may be a loaded config."""
    config = config_name if isinstance(config_name, dict) else load_config(config_name, overrides)
    model = build_segmentor(config)
    report = None
    if checkpoint:
        with rank_zero_first():
            report = load_checkpoint(model, checkpoint)
    model = model.to(device, parse_dtype(dtype)).eval()
    return config, model, report, build_dataset(config["data"], "val", model.num_classes, model.ignore_index)
