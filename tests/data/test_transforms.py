"""Resizing with mmcv's rounding, checked on hand-computed sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from swinseg.data.transforms import (
    imrescale,
    pad_batch,
    photometric_distortion,
    random_crop,
    random_flip,
    random_resize,
    rescale_size,
    scale_size,
    to_input,
)


@pytest.mark.parametrize(
    "width,height,scale,expected",
    [
        (683, 512, (2048, 512), (683, 512)),  # already fits: factor 1
        (2000, 100, (2048, 512), (2048, 102)),  # long side binds: 1.024, 102.4 -> 102
        (300, 120, (2048, 512), (1280, 512)),  # short side binds: 512 / 120
        (683, 512, 0.5, (342, 256)),  # 341.5 rounds half up
        (37, 300, (2048, 512), (253, 2048)),  # portrait: the long side binds, 37 * 2048 / 300 = 252.6
    ],
)
def test_rescale_size(width, height, scale, expected):
    assert rescale_size(width, height, scale) == expected


def test_tta_scale_is_rounded_twice():
    """Ratio 0.45 of 10 x 3: target (int(5.0), int(1.85)) = (5, 1); fitting 10 x 3 into it binds the
    short side (factor 1/3), giving (3, 1) where one rounding would give (5, 1)."""
    target = scale_size(10, 3, 0.45)
    assert target == (5, 1)
    assert rescale_size(10, 3, target) == (3, 1)


def test_imrescale_and_normalize():
    image = np.full((10, 20, 3), 200, np.uint8)
    out = imrescale(image, (40, 20))
    assert out.shape == (20, 40, 3) and (out == 200).all()
    x = to_input(out, mean=(100.0, 0.0, 50.0), std=(50.0, 1.0, 2.0))
    assert x.shape == (3, 20, 40)
    assert torch.allclose(x[:, 0, 0], torch.tensor([2.0, 200.0, 75.0]))


class ScriptedRng:
    """Stands in for ``numpy.random.Generator``: returns scripted draws, in order, per method."""

    def __init__(self, integers=(), uniform=(), random=()):
        self.draws = {"integers": list(integers), "uniform": list(uniform), "random": list(random)}

    def integers(self, low, high=None):
        value = self.draws["integers"].pop(0)
        lo, hi = (0, low) if high is None else (low, high)
        assert lo <= value < hi, (value, lo, hi)
        return value

    def uniform(self, low, high):
        value = self.draws["uniform"].pop(0)
        assert low <= value <= high
        return value

    def random(self):
        return self.draws["random"].pop(0)


def _halves():
    """4 x 8 labels: class 0 on the left half, class 1 on the right."""
    label = np.zeros((4, 8), np.uint8)
    label[:, 4:] = 1
    return np.zeros((4, 8, 3), np.uint8), label


def _offsets(*lefts):
    return [v for left in lefts for v in (0, left)]  # (top, left) per window; top is always 0 here


def test_random_crop_accepts_the_first_window_below_cat_max_ratio():
    """Window offsets 0 (all class 0), 4 (all class 1), 1 (3/4 = 0.75, not < 0.75), then 2 (1/2): taken."""
    image, label = _halves()
    _, crop = random_crop(image, label, ScriptedRng(integers=_offsets(0, 4, 1, 2, 3)), crop_size=(4, 4))
    assert crop.tolist() == [[0, 0, 1, 1]] * 4


def test_random_crop_takes_the_eleventh_window_unchecked():
    image, label = _halves()
    rng = ScriptedRng(integers=_offsets(*([0] * 10), 4))
    _, crop = random_crop(image, label, rng, crop_size=(4, 4))
    assert (crop == 1).all() and not rng.draws["integers"]


def test_random_crop_excludes_ignored_pixels_from_the_shares():
    label = np.full((2, 4), 255, np.uint8)
    label[0, :2] = 0
    label[0, 2] = 1  # class 0 is 2/3 of the labelled pixels: accepted although 255 fills most of the window
    _, crop = random_crop(np.zeros((2, 4, 3), np.uint8), label, ScriptedRng(integers=[0, 0]), crop_size=(2, 4))
    assert np.array_equal(crop, label)


def test_random_crop_smaller_image_keeps_its_size():
    image, label = _halves()
    out, crop = random_crop(image, label, ScriptedRng(integers=[0, 0]), crop_size=(512, 512), cat_max_ratio=1.0)
    assert out.shape == (4, 8, 3) and crop.shape == (4, 8)


def test_random_flip_flips_image_and_label_together():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    label = np.array([[0, 1, 2], [3, 4, 5]], np.uint8)
    flipped, flipped_label = random_flip(image, label, ScriptedRng(random=[0.3]))
    assert np.array_equal(flipped, image[:, ::-1]) and flipped_label.tolist() == [[2, 1, 0], [5, 4, 3]]
    same, same_label = random_flip(image, label, ScriptedRng(random=[0.7]))
    assert same is image and same_label is label


def test_random_resize_keeps_the_ratio_and_nearest_labels():
    image = np.zeros((100, 200, 3), np.uint8)
    label = np.random.default_rng(0).choice([3, 7, 255], size=(100, 200)).astype(np.uint8)
    # ratio 0.75: scale (1536, 384); factor min(1536 / 200, 384 / 100) = 3.84 -> 768 x 384
    out, out_label = random_resize(image, label, ScriptedRng(uniform=[0.75]))
    assert out.shape == (384, 768, 3) and out_label.shape == (384, 768)
    assert set(np.unique(out_label)) <= {3, 7, 255}


def test_photometric_brightness_only():
    image = np.array([[[10, 100, 250]]], np.uint8)
    # brightness yes (+20), contrast last, saturation no, hue no, contrast no
    rng = ScriptedRng(integers=[1, 0, 0, 0, 0], uniform=[20.0])
    assert photometric_distortion(image, rng).tolist() == [[[30, 120, 255]]]


def test_photometric_hue_turns_red_into_green():
    """OpenCV hue runs 0..180: +60 is 120 degrees, red -> green."""
    image = np.array([[[255, 0, 0]]], np.uint8)
    rng = ScriptedRng(integers=[0, 1, 0, 0, 1, 60])  # no brightness; contrast first but skipped; no saturation; hue +60
    assert photometric_distortion(image, rng, hue_delta=61).tolist() == [[[0, 255, 0]]]


def test_photometric_contrast_scales_and_clips():
    image = np.array([[[10, 100, 200]]], np.uint8)
    rng = ScriptedRng(integers=[0, 1, 1, 0, 0], uniform=[1.5])  # contrast first x1.5, nothing else
    assert photometric_distortion(image, rng).tolist() == [[[15, 150, 255]]]


def test_pad_batch_pads_images_with_zero_and_labels_with_255():
    inputs = [torch.ones(3, 3, 5), torch.ones(3, 6, 2)]
    labels = [torch.zeros(3, 5, dtype=torch.int64), torch.ones(6, 2, dtype=torch.int64)]
    images, targets = pad_batch(inputs, labels, size=(4, 4))
    assert images.shape == (2, 3, 6, 5) and targets.shape == (2, 6, 5)
    assert images[0, :, :3, :5].eq(1).all() and images[0, :, 3:].eq(0).all() and images[1, :, :, 2:].eq(0).all()
    assert targets[0, :3, :5].eq(0).all() and targets[0, 3:].eq(255).all() and targets[1, :, 2:].eq(255).all()


@settings(max_examples=40, deadline=None)
@example(h=1, w=33, scale=(16, 16), ratio=(1.0, 1.0), crop=(8, 8), cat_max_ratio=1.0, flip_prob=0.0, photometric=False, batch=1, seed=0)
@example(h=1, w=1, scale=(16, 16), ratio=(1.0, 1.0), crop=(1, 1), cat_max_ratio=1.0, flip_prob=1.0, photometric=False, batch=1, seed=0)
@given(
    h=st.integers(1, 700),
    w=st.integers(1, 700),
    scale=st.tuples(st.integers(16, 1024), st.integers(16, 1024)),
    ratio=st.tuples(st.floats(0.25, 1.0), st.floats(1.0, 2.5)),
    crop=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    cat_max_ratio=st.floats(0.1, 1.0),
    flip_prob=st.floats(0.0, 1.0),
    photometric=st.booleans(),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_fuzzed_training_pipeline_gives_finite_padded_batches(h, w, scale, ratio, crop, cat_max_ratio, flip_prob, photometric, batch, seed):
    from swinseg.data.dataset import TrainPipeline

    pipeline = TrainPipeline(
        scale=scale, ratio_range=ratio, crop_size=crop, cat_max_ratio=cat_max_ratio, flip_prob=flip_prob, photometric_distortion=photometric
    )
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(batch):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        label = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=(h, w))
        x, y = pipeline(image, label, rng)
        assert x.ndim == 3 and x.shape[0] == 3 and x.shape[1:] == y.shape
        assert x.shape[1] <= crop[0] and x.shape[2] <= crop[1] and min(x.shape[1:]) >= 1
        assert torch.isfinite(x).all() and set(y.unique().tolist()) <= {0, 1, 2, 255}
        samples.append((x, y))
    inputs, labels = pad_batch(*zip(*samples, strict=True), crop)
    assert inputs.shape == (batch, 3, *crop) and labels.shape == (batch, *crop)


def test_the_flip_probability_is_checked():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"flip prob=1.5: must be a finite number in \[0, 1\]"):
        random_flip(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), rng, prob=1.5)
