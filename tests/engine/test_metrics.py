"""IoU metric against hand-computed cases."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from swinseg.engine.metrics import METRICS, IoUMetric, intersect_and_union


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


def test_dice_fscore_precision_recall_by_hand():
    # 3 classes. class 0: 2 labelled, 3 predicted, 2 right; class 1: 3 labelled, 1 predicted, 1 right;
    # class 2: 1 labelled, 2 predicted, 1 right
    label = torch.tensor([0, 0, 1, 1, 1, 2])
    pred = torch.tensor([0, 0, 0, 1, 2, 2])
    metric = IoUMetric(3, metrics=["mIoU", "mDice", "mFscore"])
    metric.update(pred, label)
    result = metric.compute()
    assert list(result) == ["aAcc", "mIoU", "mAcc", "mDice", "mFscore", "mPrecision", "mRecall", "per_class"]
    assert list(result["per_class"]) == ["IoU", "Acc", "Dice", "Fscore", "Precision", "Recall"]
    per = result["per_class"]
    assert per["Dice"] == [80.0, 50.0, 66.67]  # 2|A∩B| / (|A| + |B|): 4/5, 2/4, 2/3
    assert per["Precision"] == [66.67, 100.0, 50.0]
    assert per["Recall"] == [100.0, 33.33, 100.0]
    assert per["Fscore"] == [80.0, 50.0, 66.67]  # 2PR/(P+R): (4/3)/(5/3), (2/3)/(4/3), 1/1.5
    assert result["mFscore"] == round(100 * (0.8 + 0.5 + 2 / 3) / 3, 2) and result["aAcc"] == 66.67
    wrong = IoUMetric(2, metrics=["mFscore"])
    wrong.update(torch.tensor([1, 0]), torch.tensor([0, 1]))
    assert all(math.isnan(v) for v in wrong.compute()["per_class"]["Fscore"])  # P = R = 0: 0/0, as MMSegmentation's f_score
    beta2 = IoUMetric(3, metrics=["mFscore"], beta=2)
    beta2.update(pred, label)
    p, r = 2 / 3, 1.0
    assert beta2.compute()["per_class"]["Fscore"][0] == round(100 * 5 * p * r / (4 * p + r), 2)


def test_confusion_matrix_rows_are_ground_truth_and_ignore_is_left_out():
    label = torch.tensor([[0, 0, 1], [1, 255, 7]])  # 255 ignored, 7 outside the 3 classes
    pred = torch.tensor([[0, 2, 1], [0, 1, 1]])
    metric = IoUMetric(3)
    metric.update(pred, label)
    assert metric.confusion.dtype == torch.int64
    assert metric.confusion.tolist() == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 20), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_the_confusion_matrix_holds_the_areas(num_classes, h, w, seed):
    """Where every label is a class or ignored: its diagonal is the intersection, its row sums the
    label areas and its column sums the prediction areas."""
    rng = np.random.default_rng(seed)
    label = torch.from_numpy(rng.choice(list(range(num_classes)) + [255], size=(h, w)))
    pred = torch.from_numpy(rng.integers(0, num_classes, size=(h, w)))
    metric = IoUMetric(num_classes)
    areas = metric.update(pred, label)
    assert torch.equal(metric.confusion.diagonal(), areas[0])
    assert torch.equal(metric.confusion.sum(1), areas[3]) and torch.equal(metric.confusion.sum(0), areas[2])


def test_an_unknown_metric_is_named_with_the_allowed_ones():
    with pytest.raises(ValueError, match="'mAP'.*mIoU, mDice, mFscore"):
        IoUMetric(3, metrics=["mIoU", "mAP"])


MMSEG_PYTHON = os.environ.get("MMSEG_PYTHON")


@pytest.mark.skipif(not MMSEG_PYTHON, reason="set MMSEG_PYTHON to an interpreter with mmsegmentation 1.x")
@pytest.mark.parametrize("nan_to_num, beta", [(None, 1), (0, 2)])
def test_metrics_match_mmsegmentations_ioumetric(tmp_path, nan_to_num, beta):
    """Random images with ignored pixels, a class never labelled and one never predicted."""
    gen = torch.Generator().manual_seed(beta)
    pairs = []
    for h, w in [(31, 47), (64, 64), (5, 200)]:
        label = torch.randint(0, 5, (h, w), generator=gen)
        label[torch.rand(h, w, generator=gen) < 0.2] = 255
        label[label == 4] = 3  # class 4 never labelled
        pred = torch.randint(0, 6, (h, w), generator=gen)
        pred[pred == 2] = 1  # class 2 never predicted; class 5 never labelled nor ... predicted
        pred[pred == 5] = 0
        pairs.append((pred, label))
    request = dict(pairs=pairs, num_classes=6, ignore_index=255, iou_metrics=list(METRICS), beta=beta, nan_to_num=nan_to_num)
    torch.save(request, tmp_path / "request.pt")
    here = Path(__file__).with_name("mmseg_metric_reference.py")
    subprocess.run([MMSEG_PYTHON, str(here), str(tmp_path / "request.pt"), str(tmp_path / "out.pt")], check=True)
    expected = torch.load(tmp_path / "out.pt")
    metric = IoUMetric(6, metrics=METRICS, beta=beta, nan_to_num=nan_to_num)
    for pred, label in pairs:
        metric.update(pred, label)
    assert torch.equal(metric.areas, torch.stack(expected["areas"]))
    result = metric.compute()
    mine = {k: v for k, v in result.items() if k != "per_class"}
    assert mine.keys() == expected["summary"].keys()
    for key, value in expected["summary"].items():
        assert mine[key] == pytest.approx(value, abs=1e-9, nan_ok=True), key
    assert result["per_class"].keys() == expected["per_class"].keys()
    for key, values in expected["per_class"].items():
        assert np.allclose(result["per_class"][key], values, equal_nan=True, atol=1e-9), key


def test_the_config_names_its_metrics_and_save_best_must_be_one_they_give():
    from swinseg.configs import load_config
    from swinseg.engine.metrics import config_metrics

    from ..helpers import DEMO_CONFIG

    assert config_metrics(load_config(DEMO_CONFIG)) == ("mIoU",)
    assert config_metrics(load_config(DEMO_CONFIG, ["test.metrics=[mIoU,mFscore]", "train.save_best=mPrecision"])) == ("mIoU", "mFscore")
    with pytest.raises(ValueError, match=r"train.save_best: .*give no 'mDice' \(they give aAcc, mIoU, mAcc\)"):
        config_metrics(load_config(DEMO_CONFIG, ["train.save_best=mDice"]))
    with pytest.raises(ValueError, match="test.metrics: unknown metric 'mAP'"):
        config_metrics(load_config(DEMO_CONFIG, ["test.metrics=[mAP]"]))
