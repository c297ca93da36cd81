"""The tools' shared fixture: a small synthetic zoo entry, its config and a checkpoint."""

from __future__ import annotations

import pytest

import swinseg
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
