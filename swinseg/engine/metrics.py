"""MMSegmentation's ``IoUMetric``, with exact 64-bit counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["intersect_and_union", "IoUMetric"]


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


class IoUMetric:
    """Accumulates per-image areas; ``compute`` gives aAcc, mIoU, mAcc and per-class IoU/Acc.

    Summary values are percentages rounded to 2 decimals as MMSegmentation prints them; classes
    without any label or prediction pixel are NaN and skipped by the means (or replaced with
    ``nan_to_num``).
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        nan_to_num: float | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.nan_to_num = nan_to_num
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.areas = torch.zeros(4, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, label: Tensor) -> None:
        self.areas += intersect_and_union(pred.cpu(), label.cpu(), self.num_classes, self.ignore_index)

    def all_reduce(self) -> None:
        """Sum the counts of every rank (each rank evaluates its own shard)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.areas)

    def compute(self) -> dict[str, Any]:
        intersect, union, _, label = (a.numpy().astype(np.float64) for a in self.areas)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_class = {"IoU": intersect / union, "Acc": intersect / label}
            a_acc = intersect.sum() / label.sum()
        if self.nan_to_num is not None:
            per_class = {k: np.nan_to_num(v, nan=self.nan_to_num) for k, v in per_class.items()}
        summary = {"aAcc": a_acc, "mIoU": np.nanmean(per_class["IoU"]), "mAcc": np.nanmean(per_class["Acc"])}
        return {
            **{k: float(np.round(v * 100, 2)) for k, v in summary.items()},
            "per_class": {k: np.round(v * 100, 2).tolist() for k, v in per_class.items()},
        }

    def table(self, result: dict[str, Any] | None = None) -> str:
        """The per-class IoU/Acc table and the summary line, as text (of ``result`` when given:
        what :meth:`compute` returned)."""
        result = result or self.compute()
        width = max(len("Class"), *(len(n) for n in self.class_names))
        lines = [f"{'Class':<{width}}  {'IoU':>6}  {'Acc':>6}"]
        for name, iou, acc in zip(self.class_names, result["per_class"]["IoU"], result["per_class"]["Acc"], strict=True):
            lines.append(f"{name:<{width}}  {iou:6.2f}  {acc:6.2f}")
        lines.append(f"aAcc {result['aAcc']:.2f}  mIoU {result['mIoU']:.2f}  mAcc {result['mAcc']:.2f}")
        return "\n".join(lines)
