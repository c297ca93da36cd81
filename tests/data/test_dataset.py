"""Dataset folders, label checks, the training pipeline and the infinite sampler."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch

from swinseg.configs import list_configs, load_config
from swinseg.data.dataset import SegDataset, TrainPipeline, build_dataset, read_label, reduce_zero_label
from swinseg.data.loader import InfiniteSampler, TrainSet, build_train_loader, default_workers, shard

CLASSES, PALETTE = ["a", "b", "c"], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def _write(root, split, name, label, img_suffix=".jpg", seg_suffix=".png", size=None):
    h, w = size or label.shape
    (root / "images" / split / name).parent.mkdir(parents=True, exist_ok=True)
    (root / "annotations" / split / name).parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "images" / split / f"{name}{img_suffix}"), image)
    cv2.imwrite(str(root / "annotations" / split / f"{name}{seg_suffix}"), label.astype(np.uint8))


def test_reduce_zero_label_as_mmsegmentation():
    label = np.array([[0, 1, 2], [150, 255, 3]], np.uint8)
    assert reduce_zero_label(label).tolist() == [[255, 0, 1], [149, 255, 2]]


def test_ade20k_layout_reduces_labels_and_lists_sorted(tmp_path):
    label = np.array([[0, 1], [150, 2]])
    for name in ("b", "a", "c"):
        _write(tmp_path, "training", name, label)
    data = dict(
        type="ade20k",
        root=str(tmp_path),
        train=dict(img_dir="images/training", ann_dir="annotations/training"),
        img_suffix=".jpg",
        seg_map_suffix=".png",
        reduce_zero_label=True,
        classes=None,
        palette=None,
    )
    ds = build_dataset(data, "train", num_classes=150)
    assert [p.stem for p, _ in ds.samples] == ["a", "b", "c"] and ds.num_classes == 150
    image, lab = ds[0]
    assert image.shape == (2, 2, 3) and image.dtype == np.uint8
    assert lab.tolist() == [[255, 0], [149, 1]]
    with pytest.raises(ValueError, match="the dataset has 150 classes but the model predicts 19"):
        build_dataset(data, "train", num_classes=19)


def test_custom_suffixes_nested_folders_and_no_reduction(tmp_path):
    label = np.array([[0, 1, 2, 255]])
    _write(tmp_path, "training", "x/one", label, img_suffix="_leftImg8bit.png", seg_suffix="_labelIds.png")
    ds = SegDataset(
        tmp_path / "images/training",
        tmp_path / "annotations/training",
        CLASSES,
        PALETTE,
        img_suffix="_leftImg8bit.png",
        seg_map_suffix="_labelIds.png",
    )
    assert len(ds) == 1 and ds[0][1].tolist() == [[0, 1, 2, 255]]


def test_out_of_range_labels_name_the_file_and_values(tmp_path):
    _write(tmp_path, "training", "bad", np.array([[0, 3, 7, 255]]))
    ds = SegDataset(tmp_path / "images/training", tmp_path / "annotations/training", CLASSES, PALETTE)
    with pytest.raises(ValueError, match=r"bad\.png has values 3, 7 outside 0\.\.2 .*reduce_zero_label=False"):
        ds[0]
    reduced = SegDataset(tmp_path / "images/training", tmp_path / "annotations/training", CLASSES, PALETTE, reduce_zero_label=True)
    with pytest.raises(ValueError, match=r"values 7 outside 0\.\.3"):  # stored values shown, 3 -> class 2 is fine
        reduced[0]


def test_missing_counterparts_and_mismatched_sizes(tmp_path):
    _write(tmp_path, "training", "pair", np.zeros((4, 4)))
    _write(tmp_path, "training", "lonely", np.zeros((4, 4)))
    (tmp_path / "annotations/training/lonely.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 file\(s\) without a counterpart.*lonely\.jpg"):
        SegDataset(tmp_path / "images/training", tmp_path / "annotations/training", CLASSES, PALETTE)
    (tmp_path / "images/training/lonely.jpg").unlink()
    _write(tmp_path, "training", "sized", np.zeros((4, 4)), size=(5, 4))
    ds = SegDataset(tmp_path / "images/training", tmp_path / "annotations/training", CLASSES, PALETTE)
    with pytest.raises(ValueError, match=r"sized\.jpg is 4x5 but its annotation .*sized\.png is 4x4"):
        ds[[p.stem for p, _ in ds.samples].index("sized")]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SegDataset(tmp_path / "nope", tmp_path / "annotations/training", CLASSES, PALETTE)


def test_colour_labels_are_refused(tmp_path):
    path = tmp_path / "rgb.png"
    cv2.imwrite(str(path), np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        read_label(path)


def test_pipeline_output_is_normalized_crop_and_deterministic_per_seed():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    label = rng.integers(0, 3, (300, 400)).astype(np.uint8)
    pipe = TrainPipeline(scale=(400, 100), crop_size=(64, 48))
    x, y = pipe(image, label, np.random.default_rng(5))
    assert x.shape[0] == 3 and x.shape[1:] == y.shape and y.shape[0] <= 64 and y.shape[1] <= 48 and y.dtype == torch.int64
    x2, y2 = pipe(image, label, np.random.default_rng(5))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_sampler_shards_the_single_process_stream():
    single = InfiniteSampler(10, seed=3)
    stream = [next(it) for it in [iter(single)] for _ in range(25)]
    assert sorted(i for i, _ in stream[:10]) == list(range(10))  # each epoch is a permutation
    assert [p for _, p in stream] == list(range(25))
    ranks = [iter(InfiniteSampler(10, seed=3, rank=r, world_size=2)) for r in range(2)]
    interleaved = [next(ranks[k % 2]) for k in range(24)]
    assert interleaved == stream[:24]
    resumed = iter(InfiniteSampler(10, seed=3, rank=1, world_size=2, start=4))
    assert next(resumed) == stream[9]
    assert shard(7, 1, 3) == [1, 4] and shard(7, 0, 1) == list(range(7))


def test_loader_batches_do_not_depend_on_workers(tmp_path):
    for k in range(4):
        _write(tmp_path, "training", f"s{k}", np.random.default_rng(k).integers(0, 3, (40, 50)))
    ds = SegDataset(tmp_path / "images/training", tmp_path / "annotations/training", CLASSES, PALETTE)
    train_set = TrainSet(ds, TrainPipeline(scale=(100, 40), crop_size=(32, 32)), seed=7)
    a = build_train_loader(train_set, 2, (32, 32), num_workers=0)
    b = build_train_loader(train_set, 2, (32, 32), num_workers=2)
    for _ in range(3):
        (xa, ya, _), (xb, yb, _) = next(a), next(b)
        assert xa.shape == (2, 3, 32, 32) and torch.equal(xa, xb) and torch.equal(ya, yb)


def test_default_workers_follow_the_cores_of_each_process(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    for cpus, local, expected in ((2, None, 2), (1, None, 1), (64, None, 4), (16, "8", 2), (4, "8", 1)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n)), raising=False)
        if local:
            monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
        assert default_workers() == expected, (cpus, local)
    assert all(load_config(name)["data"]["num_workers"] is None for name in list_configs())  # the base configs ask for the default


def test_the_pipeline_settings_are_checked():
    for kwargs, message in (
        (dict(flip_prob=1.5), r"data.pipeline.flip_prob=1.5: must be a finite number in \[0, 1\]"),
        (dict(crop_size=(-1, 0)), r"data.pipeline.crop_size=\(-1, 0\): every entry must be an integer >= 1"),
        (dict(crop_size=(64,)), r"data.pipeline.crop_size must be a pair, got \[64\]"),
        (dict(ratio_range=(2.0, 0.5)), r"data.pipeline.ratio_range must be \[low, high\] with low <= high"),
        (dict(cat_max_ratio=0.0), r"data.pipeline.cat_max_ratio=0.0: must be a finite number in \(0, 1\]"),
    ):
        with pytest.raises(ValueError, match=message):
            TrainPipeline(**kwargs)
