"""``swinseg test`` beside a zoo entry's published mIoU, and the doctor when they differ: on a
small synthetic zoo entry whose published number is what its checkpoint scores."""

from __future__ import annotations

import re

import pytest

import swinseg
from swinseg.cli import main
from swinseg.configs import CONFIG_DIR
from swinseg.configs.defaults import DATA_PREPROCESSOR, TEST_CFG
from swinseg.configs.schema import full_config
from swinseg.models import EncoderDecoder, SwinTransformer, UPerHead, create_model, zoo
from swinseg.tools.synthetic import write_dataset

from ..helpers import randomize_

NAME = "swin-nano_upernet_test-zoo-entry"
CLASSES = ["sky", "ground", "disc", "brick box", "striped triangle", "dotted blob", "checker polygon"]


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zoo")
    config = full_config(
        EncoderDecoder,
        backbone=full_config(SwinTransformer, embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], always_partition=True),
        decode_head=full_config(UPerHead, in_channels=None, channels=16, num_classes=7),
        auxiliary_head=None,
        data_preprocessor=DATA_PREPROCESSOR,
        test_cfg=TEST_CFG,
        test_pipeline=dict(scale=[128, 96], keep_ratio=True),
    )
    spec = zoo.register(zoo.ModelSpec(NAME, EncoderDecoder, config, meta=dict(task="segmentation", mIoU=None, mIoU_ms_flip=None)))
    root = write_dataset(tmp / "data", train=1, val=4, size=(48, 64))
    path = tmp / f"{NAME}.yaml"
    path.write_text(
        f"_base_: {CONFIG_DIR / '_base_' / 'upernet-swin_ade20k-160k.yaml'}\nmodel: {{name: {NAME}}}\n"
        f"data: {{type: custom, root: {root}, classes: {CLASSES}, num_workers: 0}}\n"
    )
    model = randomize_(create_model(NAME))
    model.dataset_meta = {"classes": CLASSES, "palette": [[i * 30, 0, 0] for i in range(7)]}
    checkpoint = swinseg.save_checkpoint(model, tmp / "entry.safetensors")
    yield spec, str(path), str(checkpoint)
    del zoo._REGISTRY[NAME]


def _measured(out: str) -> float:
    return float(re.search(r"measured ([\d.]+)", out).group(1))


def test_published_beside_measured_and_no_doctor_when_they_agree(entry, capsys):
    spec, config, checkpoint = entry
    spec.meta["mIoU"] = 0.0
    assert main(["test", config, checkpoint, "--tolerance", "1000"]) == 0
    measured = _measured(capsys.readouterr().out)
    spec.meta["mIoU"] = measured
    assert main(["test", config, checkpoint]) == 0
    out = capsys.readouterr().out
    assert f"published mIoU {measured:.2f}, measured {measured:.2f}: +0.00" in out and "doctor" not in out


def test_the_doctor_names_what_differs_from_the_zoo(entry, capsys):
    spec, config, checkpoint = entry
    spec.meta["mIoU"] = 99.0
    assert main(["test", config, checkpoint, "--mode", "slide", "--crop", "32", "--stride", "21"]) == 0
    out = capsys.readouterr().out
    assert "reproduction doctor (the difference is beyond 0.5)" in out
    assert re.search(r"\[!!\] test mode: slide, crop \[32, 32\].*the zoo used", out)
    assert "[ok] test scale: [128, 96]" in out and "[ok] checkpoint classes" in out and "[ok] annotation folder" in out
    assert re.search(r"\[(ok|!!)\] channel order: mIoU on the first images", out)
    assert "[ok] labels: reduce_zero_label=True" in out


def test_the_doctor_flags_a_label_setup_that_does_not_fit(entry, capsys):
    spec, config, checkpoint = entry
    spec.meta["mIoU"] = 99.0
    assert main(["test", config, checkpoint, "--set", "data.reduce_zero_label=false", "data.classes=null"]) == 1
    # the synthetic labels run 1..7: without the reduction 7 is beyond 7 classes, and the test stops there
    assert "outside 0..6" in capsys.readouterr().err
    assert main(["test", config, checkpoint, "--set", "data.classes=[a, b, c, d, e, f, g]"]) == 0
    assert "[!!] checkpoint classes" in capsys.readouterr().out
