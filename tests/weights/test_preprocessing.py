"""Conversion keeps a segmentor's test settings in each layout's own place: a model rebuilt from
the converted file labels as the one it came from (the test scale (512, 192) fell back to
(2048, 512), labelling 3% of pixels differently)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import swinseg
from swinseg.predict import predict
from swinseg.weights import convert_checkpoint
from swinseg.weights.preprocessing import preprocessing_from_meta

from ..helpers import tiny_segmentor

# the shape of what MMSegmentation 1.x's runner saves as meta['cfg'] (Config.pretty_text)
MMSEG_CFG = """norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
    pad_val=0, seg_pad_val=255, size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0], bgr_to_rgb=True, size=(512, 512)),
    backbone=dict(type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2], norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=(640, 640), stride=(426, 426)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
work_dir = './work_dirs/upernet'
"""


def test_an_mmsegmentation_config_text_gives_its_test_settings():
    got = preprocessing_from_meta({"cfg": MMSEG_CFG})
    assert got == {
        "data_preprocessor": {"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0]},
        "test_cfg": {"mode": "slide", "crop_size": [640, 640], "stride": [426, 426]},
        "test_pipeline": {"scale": [2560, 640], "keep_ratio": True},
    }
    assert preprocessing_from_meta({"cfg": "model = dict(backbone=some_variable, test_cfg=make())\n"}) == {}
    assert preprocessing_from_meta({"cfg": "not python ("}) == {}


@pytest.mark.parametrize(("to", "suffix"), [("mmseg", ".pth"), ("official", ".pth"), ("hf", "")])
def test_converted_checkpoints_keep_the_test_scale_and_mode(tmp_path, to, suffix):
    model = tiny_segmentor(5, test_pipeline=dict(scale=[512, 192]), test_cfg=dict(mode="slide", crop_size=[48, 48], stride=[32, 32]))
    model.data_preprocessor.update(mean=[120.0, 110.0, 100.0], std=[50.0, 60.0, 70.0])
    native = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    _, dest = convert_checkpoint(native, tmp_path / f"converted{suffix}", to=to)
    rebuilt = swinseg.create_model(dest).eval()
    assert rebuilt.test_pipeline["scale"] == [512, 192] and rebuilt.test_cfg == model.test_cfg
    assert rebuilt.preprocessing == model.preprocessing
    image = np.random.default_rng(0).integers(0, 256, (100, 260, 3), dtype=np.uint8)
    assert torch.equal(predict(rebuilt, image)[0], predict(model, image)[0])
    if to == "hf":
        processor = json.loads((dest / "preprocessor_config.json").read_text())
        assert processor["size"] == {"shortest_edge": 192, "longest_edge": 512} and processor["image_mean"][0] == 120 / 255


def test_a_layout_without_a_place_for_them_says_so(tmp_path):
    model = tiny_segmentor(5, test_pipeline=dict(scale=[512, 192]))
    native = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert_checkpoint(native, tmp_path / "flat.safetensors", to="mmseg")
    assert any("has no place for the segmentor's data_preprocessor, test_cfg, test_pipeline" in str(w.message) for w in caught)


def test_a_checkpoint_of_another_architecture_is_summarized_in_a_short_line(tmp_path):
    """It was one 15 KB line listing 194 key pairs."""
    small = swinseg.create_model(
        "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512",
        backbone=dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]),
        decode_head=dict(channels=16, num_classes=7),
        auxiliary_head=dict(channels=8),
    )
    path = swinseg.save_checkpoint(small, tmp_path / "small.safetensors")
    model = swinseg.create_model("swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512")
    with pytest.raises(ValueError) as error:
        swinseg.load_checkpoint(model, path)
    message = str(error.value)
    assert "embed_dims 32 vs 96; depths (2, 2, 2, 2) vs (2, 2, 6, 2); classes 7 vs 150;" in message
    assert " more (checkpoint vs model)" in message and len(message) < 600
