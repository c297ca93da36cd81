"""MMSegmentation's ``IoUMetric``, with exact 64-bit counts."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from ..configs.rules import METRICS

__all__ = ["METRICS", "IoUMetric", "area_metrics", "check_metrics", "config_metrics", "confusion", "intersect_and_union", "summary_keys"]


def intersect_and_union(pred: Tensor, label: Tensor, num_classes: int, ignore_index: int = 255) -> Tensor:
    """(4, num_classes) int64 areas of intersection, union, prediction and label per class, over
    the pixels whose label is not ``ignore_index`` (labels outside 0..num_classes-1 count nowhere,
    as with MMSegmentation's histograms). ``pred`` and ``label`` are (H, W) class ids."""
    if pred.shape != label.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and label {tuple(label.shape)} differ in size")
    valid = label != ignore_index
    pred, label = pred[valid].long(), label[valid].long()

    def hist(x: Tensor) -> Tensor:
        x = x[(x >= 0) & (x < num_classes)]
        return torch.bincount(x, minlength=num_classes)[:num_classes]

    intersect = hist(pred[pred == label])
    area_pred, area_label = hist(pred), hist(label)
    return torch.stack([intersect, area_pred + area_label - intersect, area_pred, area_label])


# what each of MMSegmentation's iou_metrics adds per class, in its order
PER_CLASS = {"mIoU": ("IoU", "Acc"), "mDice": ("Dice", "Acc"), "mFscore": ("Fscore", "Precision", "Recall")}


def confusion(pred: Tensor, label: Tensor, num_classes: int, ignore_index: int = 255) -> Tensor:
    """(num_classes, num_classes) int64 pixel counts, rows the ground truth and columns the
    prediction, over the pixels whose label is a class (not ``ignore_index``, not out of range)."""
    label, pred = label.reshape(-1).long(), pred.reshape(-1).long()
    keep = (label != ignore_index) & (label >= 0) & (label < num_classes) & (pred >= 0) & (pred < num_classes)
    counts = torch.bincount(label[keep] * num_classes + pred[keep], minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def area_metrics(areas: np.ndarray, metrics: Sequence[str] = ("mIoU",), beta: float = 1.0) -> dict[str, np.ndarray]:
    """MMSegmentation's ``total_area_to_metrics`` on (4, C) areas (intersection, union,
    prediction, label): ``aAcc`` and the per-class fractions ``metrics`` ask for (NaN where a
    class has no pixel to divide by). Fscore is (1 + beta^2) P R / (beta^2 P + R)."""
    intersect, union, pred, label = (np.asarray(a, dtype=np.float64) for a in areas)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: dict[str, np.ndarray] = {"aAcc": np.asarray(intersect.sum() / label.sum())}
        for metric in metrics:
            if metric == "mIoU":
                out.update(IoU=intersect / union, Acc=intersect / label)
            elif metric == "mDice":
                out.update(Dice=2 * intersect / (pred + label), Acc=intersect / label)
            else:
                precision, recall = intersect / pred, intersect / label
                fscore = (1 + beta**2) * precision * recall / (beta**2 * precision + recall)
                out.update(Fscore=fscore, Precision=precision, Recall=recall)
    return out


def check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    """``metrics`` as a tuple, each one of :data:`METRICS` (the error names the one that is not)."""
    metrics = tuple([metrics] if isinstance(metrics, str) else metrics)
    for metric in metrics:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: the metrics are {', '.join(METRICS)}")
    if not metrics:
        raise ValueError(f"no metric asked for: the metrics are {', '.join(METRICS)}")
    return metrics


def summary_keys(metrics: Sequence[str]) -> list[str]:
    """The summary values :meth:`IoUMetric.compute` gives for ``metrics`` (what ``save_best`` may name)."""
    return ["aAcc", *dict.fromkeys(f"m{name}" for metric in check_metrics(metrics) for name in PER_CLASS[metric])]


def config_metrics(config: dict[str, Any]) -> tuple[str, ...]:
    """A config's ``test.metrics``, checked; a ``train.save_best`` they do not give is refused here,
    before any training."""
    try:
        metrics = check_metrics(config["test"]["metrics"])
    except ValueError as e:
        raise ValueError(f"test.metrics: {e}") from None
    best = config["train"]["save_best"]
    if best and best not in summary_keys(metrics):
        raise ValueError(f"train.save_best: test.metrics {list(metrics)} give no {best!r} (they give {', '.join(summary_keys(metrics))})")
    return metrics


class IoUMetric:
    """Accumulates per-image areas and the confusion matrix; ``compute`` gives MMSegmentation's
    ``IoUMetric(iou_metrics=metrics, beta=beta)`` results.

    ``compute()`` holds ``aAcc`` and ``m<name>`` per class metric (mIoU, mAcc, mDice, mFscore,
    mPrecision, mRecall as ``metrics`` ask), percentages rounded to 2 decimals as MMSegmentation
    prints them, and ``per_class``: each name to a list over classes. A class with no pixel to
    divide by is NaN and skipped by the means, or ``nan_to_num`` (applied before the means, as
    MMSegmentation does). ``confusion`` is the (C, C) int64 matrix, rows the ground truth.
    With ``images``, ``image_scores`` is an (images,) float64 tensor: each image's own mIoU (%,
    over the classes in its label or prediction; NaN where it has none), set by ``update(...,
    index=i)``.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        nan_to_num: float | None = None,
        class_names: Sequence[str] | None = None,
        metrics: Sequence[str] = ("mIoU",),
        beta: float = 1.0,
        images: int = 0,
    ) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.nan_to_num = nan_to_num
        self.metrics = check_metrics(metrics)
        self.beta = beta
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.areas = torch.zeros(4, num_classes, dtype=torch.int64)
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.image_scores = torch.full((images,), math.nan, dtype=torch.float64)

    def update(self, pred: Tensor, label: Tensor, index: int | None = None) -> Tensor:
        """Add one image (``index``: its place in ``image_scores``); returns its (4, C) areas."""
        pred, label = pred.cpu(), label.cpu()
        areas = intersect_and_union(pred, label, self.num_classes, self.ignore_index)
        self.areas += areas
        self.confusion += confusion(pred, label, self.num_classes, self.ignore_index)
        if index is not None:
            present = areas[1] > 0
            self.image_scores[index] = (areas[0][present] / areas[1][present]).mean().item() * 100 if present.any() else math.nan
        return areas

    def all_reduce(self) -> None:
        """Sum the counts of every rank (each rank evaluates its own shard, and scores its own images)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.areas)
            dist.all_reduce(self.confusion)
            # NaN marks an image another rank scored: the one rank that scored it gives its value
            scored = ~self.image_scores.isnan()
            values = torch.stack([torch.where(scored, self.image_scores, 0.0), scored.double()])
            dist.all_reduce(values)
            self.image_scores = torch.where(values[1] > 0, values[0], math.nan)

    def compute(self) -> dict[str, Any]:
        values = area_metrics(self.areas.numpy(), self.metrics, self.beta)
        if self.nan_to_num is not None:
            values = {k: np.nan_to_num(v, nan=self.nan_to_num) for k, v in values.items()}
        with warnings.catch_warnings():  # the mean of a metric that is NaN for every class is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            summary = {("aAcc" if k == "aAcc" else f"m{k}"): float(np.round(np.nanmean(v) * 100, 2)) for k, v in values.items()}
        return {**summary, "per_class": {k: np.round(v * 100, 2).tolist() for k, v in values.items() if k != "aAcc"}}

    def table(self, result: dict[str, Any] | None = None) -> str:
        """The per-class table and the summary line, as text (of ``result`` when given: what
        :meth:`compute` returned)."""
        result = result or self.compute()
        columns = list(result["per_class"])
        width = max(len("Class"), *(len(n) for n in self.class_names))
        lines = [f"{'Class':<{width}}" + "".join(f"  {c:>9}" for c in columns)]
        for i, name in enumerate(self.class_names):
            lines.append(f"{name:<{width}}" + "".join(f"  {result['per_class'][c][i]:9.2f}" for c in columns))
        lines.append("  ".join(f"{k} {v:.2f}" for k, v in result.items() if k != "per_class"))
        return "\n".join(lines)
