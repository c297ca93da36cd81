"""Bad values are refused where they enter, with the argument, the value and the allowed range
(the defects found when the peers' own unit tests ran against swinseg)."""

from __future__ import annotations

import numpy as np
import pytest

from swinseg import SwinTransformer
from swinseg.cli import main
from swinseg.data.dataset import TrainPipeline
from swinseg.data.transforms import random_flip
from swinseg.models.heads import FCNHead

from .helpers import DEMO_CONFIG


def test_pretrain_img_size_must_be_a_size():
    for bad in ((112, 112, 112), (0, 64), -3, (64.5, 64)):
        with pytest.raises(ValueError, match=r"pretrain_img_size(=.*must be an integer >= 1| must be an int or an \(H, W\) pair)"):
            SwinTransformer(
                pretrain_img_size=bad,
                use_abs_pos_embed=True,
                embed_dims=8,
                depths=(1, 1),
                num_heads=(1, 1),
                strides=(4, 2),
                out_indices=(0, 1),
            )
    assert SwinTransformer(pretrain_img_size=(96, 64), use_abs_pos_embed=True, embed_dims=8, depths=(1, 1), num_heads=(1, 1),
                           strides=(4, 2), out_indices=(0, 1)).pos_grid == (24, 16)  # fmt: skip


def test_a_three_stage_classifier_ignores_the_backbones_out_indices():
    model = SwinTransformer(embed_dims=8, depths=(1, 1, 1), num_heads=(1, 1, 2), strides=(4, 2, 2), num_classes=10)
    assert model.num_classes == 10
    with pytest.raises(ValueError, match=r"out_indices \[0, 1, 2, 3\] must lie in 0..2"):
        SwinTransformer(embed_dims=8, depths=(1, 1, 1), num_heads=(1, 1, 2), strides=(4, 2, 2))


def test_fcn_head_needs_a_non_negative_number_of_convolutions():
    with pytest.raises(ValueError, match="FCNHead: num_convs=-1: must be an integer >= 0"):
        FCNHead(in_channels=8, channels=8, num_convs=-1, num_classes=3)


def test_flip_probability_and_crop_size_are_checked():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"flip prob=1.5: must be a finite number in \[0, 1\]"):
        random_flip(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), rng, prob=1.5)
    for kwargs, message in (
        (dict(flip_prob=1.5), r"data.pipeline.flip_prob=1.5: must be a finite number in \[0, 1\]"),
        (dict(crop_size=(-1, 0)), r"data.pipeline.crop_size=\(-1, 0\): every entry must be an integer >= 1"),
        (dict(crop_size=(64,)), r"data.pipeline.crop_size must be a pair, got \[64\]"),
        (dict(ratio_range=(2.0, 0.5)), r"data.pipeline.ratio_range must be \[low, high\] with low <= high"),
        (dict(cat_max_ratio=0.0), r"data.pipeline.cat_max_ratio=0.0: must be a finite number in \(0, 1\]"),
    ):
        with pytest.raises(ValueError, match=message):
            TrainPipeline(**kwargs)


def test_repeated_set_flags_all_apply(capsys):
    assert main(["config", DEMO_CONFIG, "--set", "train.seed=7", "--set", "train.amp=bf16"]) == 0
    out = capsys.readouterr().out
    assert "seed: 7" in out and "amp: bf16" in out


def test_a_bad_pipeline_value_stops_training_before_it_starts(tmp_path, capsys):
    from swinseg.tools.synthetic import write_dataset

    root = write_dataset(tmp_path / "data", train=1, val=1, size=(48, 64))
    args = ["train", DEMO_CONFIG, "--work-dir", str(tmp_path / "w"), "--set", "data.pipeline.flip_prob=1.5", f"data.root={root}"]
    assert main(args) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: data.pipeline.flip_prob=1.5: must be a finite number in [0, 1]"
    assert not (tmp_path / "w" / "iter_1.pth").exists()
