"""IoU metric against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from swinseg.engine.metrics import IoUMetric, intersect_and_union


def test_hand_computed_areas_with_ignore_and_absent_classes():
    # 4 classes; class 2 only predicted, class 3 absent from both; one ignored pixel predicted as 0
    label = torch.tensor([[0, 0, 1], [1, 1, 255]])
    pred = torch.tensor([[0, 1, 1], [2, 1, 0]])
    areas = intersect_and_union(pred, label, num_classes=4)
    assert areas.tolist() == [
        [1, 2, 0, 0],  # intersection
        [2, 4, 1, 0],  # union
        [1, 3, 1, 0],  # prediction (ignored pixel excluded)
        [2, 3, 0, 0],  # label
    ]
    metric = IoUMetric(num_classes=4)
    metric.update(pred, label)
    result = metric.compute()
    # IoU: 1/2, 2/4, 0/1, NaN -> mIoU over 3 classes; Acc: 1/2, 2/3, NaN, NaN
    assert result["per_class"]["IoU"][:3] == [50.0, 50.0, 0.0] and math.isnan(result["per_class"]["IoU"][3])
    assert result["mIoU"] == round(100 * (0.5 + 0.5 + 0.0) / 3, 2)
    assert result["mAcc"] == round(100 * (0.5 + 2 / 3) / 2, 2)
    assert result["aAcc"] == 60.0  # 3 of 5 labelled pixels right
    assert IoUMetric(4, nan_to_num=0).compute()["mIoU"] == 0.0


def test_counts_accumulate_over_images_exactly():
    metric = IoUMetric(num_classes=2)
    big = torch.ones(4100, 4100, dtype=torch.int64)  # 16.8M pixels of class 1: above float32's exact range
    metric.update(big, big)
    metric.update(torch.zeros(1, 1, dtype=torch.int64), torch.ones(1, 1, dtype=torch.int64))
    assert metric.areas[3, 1].item() == 4100 * 4100 + 1 and metric.areas[0, 1].item() == 4100 * 4100
    assert "mIoU" in metric.table()


def test_mismatched_sizes_are_an_error():
    with pytest.raises(ValueError, match="differ in size"):
        intersect_and_union(torch.zeros(2, 3), torch.zeros(3, 2), 2)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(1, 30), st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_label_area_counts_every_non_ignored_pixel(num_classes, h, w, seed):
    rng = np.random.default_rng(seed)
    label = torch.from_numpy(rng.choice(list(range(num_classes)) + [255], size=(h, w)))
    pred = torch.from_numpy(rng.integers(0, num_classes, size=(h, w)))
    areas = intersect_and_union(pred, label, num_classes)
    valid = int((label != 255).sum())
    assert areas[3].sum() == valid and areas[2].sum() == valid
    assert (areas[0] <= areas[2]).all() and (areas[1] >= areas[3]).all()
