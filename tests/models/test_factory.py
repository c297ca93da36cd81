"""The one resolver of model arguments and ``create_model``'s handling of ``pretrained`` for each kind."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import swinseg
from swinseg.configs import CONFIG_DIR, load_config
from swinseg.models import EncoderDecoder, SwinTransformer, create_model, resolve, resolve_config

from ..helpers import DEMO_CONFIG, randomize_

SMALL = dict(embed_dims=16, depths=(2, 2), num_heads=(1, 2), strides=(4, 2), out_indices=(0, 1), num_classes=5)
SEGMENTOR = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.fixture
def checkpoint(tmp_path):
    model = randomize_(SwinTransformer(**SMALL))
    return model, swinseg.save_checkpoint(model, tmp_path / "small.safetensors")


def test_each_rule_in_order(tmp_path, checkpoint):
    _, path = checkpoint
    assert resolve("swin_tiny_patch4_window7_224").kind == "registered"
    assert resolve(SEGMENTOR).kind == "registered"  # also a shipped config: the registered model comes first
    assert resolve(DEMO_CONFIG).kind == "config" and resolve(DEMO_CONFIG).config["model"]["name"]
    assert resolve(str(CONFIG_DIR / f"{DEMO_CONFIG}.yaml")).kind == "config"
    assert resolve(load_config(DEMO_CONFIG)).kind == "config"
    assert resolve(path).kind == "checkpoint" and resolve(str(path)).location == str(path)
    assert resolve("https://example.com/w.pth").kind == "checkpoint"
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped config"):  # a .yaml path is a config
        resolve(tmp_path / "missing.yaml")


def test_an_unknown_argument_lists_what_was_tried_and_the_closest_names():
    with pytest.raises(KeyError) as info:
        resolve("swin_tiny_patch4_window7_22")
    message = info.value.args[0]
    for tried in ("URL", "registered model", ".yaml config", "checkpoint file", "shipped config"):
        assert tried in message
    assert "swin_tiny_patch4_window7_224" in message


def test_pretrained_with_a_checkpoint_is_honoured(tmp_path, checkpoint):
    model, path = checkpoint
    assert _same_weights(create_model(path), model)
    assert _same_weights(create_model(path, pretrained=True), model)
    fresh = create_model(path, pretrained=False)
    assert fresh.config == model.config and not _same_weights(fresh, model)
    other = randomize_(SwinTransformer(**SMALL), seed=1)
    other_path = swinseg.save_checkpoint(other, tmp_path / "other.pth")
    assert _same_weights(create_model(path, pretrained=other_path), other)


def test_a_checkpoint_is_read_once_for_its_architecture_and_weights(checkpoint, monkeypatch):
    from swinseg.weights import io

    model, path = checkpoint
    read = []
    original = io._read_file
    monkeypatch.setattr(io, "_read_file", lambda p: (read.append(p), original(p))[1])
    assert _same_weights(create_model(path), model)
    assert read == [path]
    create_model(path, pretrained=False)
    assert read == [path, path]


def test_pretrained_with_a_config(tmp_path):
    model = create_model(DEMO_CONFIG)
    assert isinstance(model, EncoderDecoder)
    expected = resolve_config(load_config(DEMO_CONFIG))["model"]
    assert model.backbone.config["embed_dims"] == expected["backbone"]["embed_dims"]
    with pytest.raises(ValueError, match="pretrained=True names no weights"):
        create_model(DEMO_CONFIG, pretrained=True)
    trained = randomize_(create_model(DEMO_CONFIG))
    path = swinseg.save_checkpoint(trained, tmp_path / "trained.safetensors")
    assert _same_weights(create_model(DEMO_CONFIG, pretrained=path), trained)


def test_registered_model_without_published_weights_says_so():
    with pytest.raises(ValueError, match="has no published weights"):
        create_model("swin-large-patch4-window7-in22k-pre_upernet_8xb2-160k_ade20k-512x512", pretrained=True)


def test_swinseg_models_exports_create_model_in_a_fresh_process():
    code = "import swinseg.models; print(swinseg.models.create_model.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "swinseg.models.factory"


def test_each_model_carries_its_preprocessing():
    classifier = create_model("swin_base_patch4_window12_384")
    pre = classifier.preprocessing
    assert (pre.resize, pre.size, pre.interpolation) == ("center_crop", (384,), "bicubic")
    segmentor = EncoderDecoder(
        backbone=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)),
        decode_head=dict(channels=8, num_classes=3),
        auxiliary_head=None,
        data_preprocessor=dict(mean=[10.0, 20.0, 30.0], std=[2.0, 4.0, 8.0]),
        test_pipeline=dict(scale=[64, 32]),
    )
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    x = segmentor.preprocessing(image)  # long side <= 64, short side <= 32: 20 x 30 -> 32 x 48
    assert x.shape == (3, 32, 48)
    same_size = segmentor.preprocessing(image, scale=1.0)
    expected = (torch.from_numpy(image).permute(2, 0, 1).float() - torch.tensor([10.0, 20.0, 30.0]).view(3, 1, 1)) / torch.tensor(
        [2.0, 4.0, 8.0]
    ).view(3, 1, 1)
    assert torch.allclose(same_size, expected)


def test_the_auxiliary_head_follows_the_decode_heads_classes_or_a_mismatch_is_refused():
    """decode_head=dict(num_classes=19) left the auxiliary head at 150 classes without a word."""
    from swinseg.configs import load_config
    from swinseg.models import resolve_config

    name = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"
    with torch.device("meta"):
        assert swinseg.create_model(name, decode_head=dict(num_classes=19)).auxiliary_head.num_classes == 19
        with pytest.raises(ValueError, match="auxiliary_head.num_classes=7 differs from decode_head.num_classes=19"):
            swinseg.create_model(name, decode_head=dict(num_classes=19), auxiliary_head=dict(num_classes=7))
    resolved = resolve_config(load_config(name, ["model.decode_head.num_classes=19"]))
    assert resolved["model"]["auxiliary_head"]["num_classes"] == 19


def test_an_unknown_name_suggests_each_close_name_once():
    with pytest.raises(KeyError) as error:
        swinseg.create_model("swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x51")
    hint = str(error.value).split("did you mean ")[1]
    names = hint.rstrip("?\"'").split(", ")
    assert names[0] == "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512" and len(set(names)) == len(names)
