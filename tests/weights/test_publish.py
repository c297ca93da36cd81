"""``swinseg publish``: a training checkpoint for release, as MMSegmentation's publish_model.py."""

from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors.torch import load_file

import swinseg
from swinseg.cli import main
from swinseg.engine.trainer import Trainer
from swinseg.models import build_segmentor
from swinseg.tools.synthetic import write_dataset
from swinseg.weights.hub import hash_from_filename

from ..helpers import tiny_train_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("publish")
    config = tiny_train_config(
        write_dataset(tmp / "data", train=2, val=1, size=(48, 64)), "schedule.max_iters=3", "schedule.warmup_iters=1"
    )
    trainer = Trainer(config, tmp / "work", progress=False)
    trainer.train()
    return config, trainer, tmp / "work" / "iter_3.pth"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_keeps_weights_and_meta_only_named_by_its_hash(trained, tmp_path, capsys):
    config, trainer, checkpoint = trained
    assert {"optimizer", "rng", "iteration"} <= torch.load(checkpoint, weights_only=True).keys()
    assert main(["publish", str(checkpoint), str(tmp_path / "tiny_upernet.pth")]) == 0
    (published,) = tmp_path.glob("tiny_upernet-*.pth")
    assert f"published {published}" in capsys.readouterr().out
    assert hash_from_filename(published.name) == _sha256(published)[:8]
    obj = torch.load(published, weights_only=True)
    assert set(obj) == {"state_dict", "meta"} and obj["meta"]["dataset_meta"]["classes"][0] == "sky"
    assert all(t.device.type == "cpu" for t in obj["state_dict"].values())
    assert "backbone.stages.0.blocks.0.attn.w_msa.qkv.weight" in obj["state_dict"]  # MMSegmentation's names
    model = build_segmentor(config)
    swinseg.load_checkpoint(model, published, sha256=hash_from_filename(published.name))
    expected = trainer.model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    assert not list(tmp_path.glob(".*"))  # nothing staged is left behind


def test_publish_native_writes_safetensors(trained, tmp_path):
    _, trainer, checkpoint = trained
    assert main(["publish", str(checkpoint), str(tmp_path / "tiny.pth"), "--format", "native"]) == 0
    (published,) = tmp_path.glob("tiny-*.safetensors")
    assert hash_from_filename(published.name) == _sha256(published)[:8]
    weights = load_file(published)
    assert torch.equal(weights["decode_head.conv_seg.weight"], trainer.model.decode_head.conv_seg.weight)
