"""Layouts: detection, round trips, MMSegmentation's Unfold merge order, loading rules."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import swinseg
from swinseg import SwinTransformer
from swinseg.weights import detect_format, from_native, infer_config, to_native

from ..helpers import max_diff, randomize_

SMALL = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))


def _sd(**kwargs):
    return randomize_(SwinTransformer(**{**SMALL, **kwargs})).state_dict()


@pytest.mark.parametrize("fmt", ["official", "mmseg", "timm", "hf", "native"])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_round_trip_is_identity(fmt, num_classes):
    sd = _sd(num_classes=num_classes)
    if fmt == "mmseg" and num_classes:
        sd = {k: v for k, v in sd.items() if not k.startswith("head.")}  # MMSegmentation backbones have no head
    theirs = from_native(sd, fmt)
    assert detect_format(theirs) == fmt
    back = to_native(theirs)
    assert back.keys() == sd.keys()
    for k in sd:
        assert torch.equal(back[k], sd[k]), k


def test_mmseg_layout_is_unfold_order():
    """A merging layer written out for MMSegmentation computes the same map with nn.Unfold."""
    model = randomize_(SwinTransformer(**SMALL))
    merge = model.stages[0].downsample
    theirs = from_native(model.state_dict(), "mmseg")
    x = torch.randn(2, 10, 14, 16)  # (B, H, W, C)
    cols = nn.Unfold(kernel_size=2, stride=2)(x.permute(0, 3, 1, 2)).transpose(1, 2)  # channel c*4 + k
    ref = F.linear(
        F.layer_norm(cols, (64,), theirs["stages.0.downsample.norm.weight"], theirs["stages.0.downsample.norm.bias"]),
        theirs["stages.0.downsample.reduction.weight"],
    )
    with torch.no_grad():
        assert max_diff(merge(x).reshape(2, -1, 32), ref) < 1e-5


def test_mmseg_key_names():
    theirs = from_native(_sd(), "mmseg")
    for key in (
        "patch_embed.projection.weight",
        "stages.0.blocks.1.attn.w_msa.qkv.weight",
        "stages.0.blocks.1.attn.w_msa.relative_position_bias_table",
        "stages.0.blocks.1.attn.w_msa.relative_position_index",
        "stages.0.blocks.1.ffn.layers.0.0.weight",
        "stages.0.blocks.1.ffn.layers.1.bias",
        "stages.2.downsample.reduction.weight",
        "norm3.weight",
    ):
        assert key in theirs


def test_official_checkpoint_into_backbone_as_mmseg_does(tmp_path):
    classifier = randomize_(SwinTransformer(**SMALL, num_classes=7))
    sd = from_native(classifier.state_dict(), "official")
    sd["layers.0.blocks.1.attn_mask"] = torch.zeros(4, 49, 49)  # official checkpoints carry these buffers
    torch.save({"model": sd}, tmp_path / "official.pth")
    backbone = SwinTransformer(**SMALL)
    report = swinseg.load_checkpoint(backbone, tmp_path / "official.pth")
    assert report.format == "official"
    assert report.dropped == ["head.bias", "head.weight", "norm.bias", "norm.weight"]
    assert sorted(report.expected_missing) == sorted(f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias"))
    assert report.missing == [] and report.unexpected == []
    assert torch.equal(backbone.norm0.weight, torch.ones(16))
    x = torch.randn(1, 3, 64, 64)
    backbone.eval(), classifier.eval()
    with torch.no_grad():
        assert max_diff(backbone.forward_stages(x)[0], classifier.forward_stages(x)[0]) == 0


def test_segmentor_checkpoint_gives_its_backbone(tmp_path):
    sd = from_native(_sd(), "mmseg")
    state = {f"backbone.{k}": v for k, v in sd.items()}
    state["decode_head.conv_seg.weight"] = torch.zeros(150, 512, 1, 1)
    torch.save({"state_dict": state, "meta": {"CLASSES": ("wall",), "PALETTE": [[1, 2, 3]]}}, tmp_path / "seg.pth")
    model = SwinTransformer(**SMALL)
    report = swinseg.load_checkpoint(model, tmp_path / "seg.pth")
    assert report.format == "mmseg" and not report.missing
    for k, v in to_native(sd).items():
        assert torch.equal(model.state_dict()[k], v)


def test_window_change_resizes_bias_tables_bicubically(tmp_path):
    src = randomize_(SwinTransformer(**SMALL, window_size=7))
    swinseg.save_checkpoint(src, tmp_path / "w7.safetensors")
    dst = SwinTransformer(**SMALL, window_size=12)
    report = swinseg.load_checkpoint(dst, tmp_path / "w7.safetensors")
    assert len(report.resized) == 8 and all(k.endswith("relative_position_bias_table") for k in report.resized)
    table = dst.stages[0].blocks[0].attn.relative_position_bias_table
    assert table.shape == (23 * 23, 1)
    # a bicubic resize keeps the corners and the centre of a 13x13 grid on a 23x23 one
    old = src.stages[0].blocks[0].attn.relative_position_bias_table.detach().view(13, 13)
    new = table.detach().view(23, 23)
    assert torch.allclose(new[11, 11], old[6, 6], atol=0.05 * old.abs().max())
    same = SwinTransformer(**SMALL, window_size=7)
    assert swinseg.load_checkpoint(same, tmp_path / "w7.safetensors").resized == []


def test_shape_mismatch_names_every_key_and_both_shapes(tmp_path):
    swinseg.save_checkpoint(randomize_(SwinTransformer(**SMALL, num_classes=10)), tmp_path / "c.pth")
    with pytest.raises(ValueError) as err:
        swinseg.load_checkpoint(SwinTransformer(**SMALL, num_classes=3), tmp_path / "c.pth")
    assert "head.weight: checkpoint (10, 128) vs model (3, 128)" in str(err.value)
    assert "head.bias: checkpoint (10,) vs model (3,)" in str(err.value)


def test_strict_loading_names_missing_keys(tmp_path):
    swinseg.save_checkpoint(randomize_(SwinTransformer(**SMALL)), tmp_path / "b.safetensors")
    classifier = SwinTransformer(**SMALL, num_classes=3)
    with pytest.raises(KeyError, match="missing: head.bias, head.weight, norm.bias, norm.weight"):
        swinseg.load_checkpoint(classifier, tmp_path / "b.safetensors")
    report = swinseg.load_checkpoint(classifier, tmp_path / "b.safetensors", strict=False)
    assert "head.weight" in report.missing and "norm0.weight" in report.unexpected


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_native_file_rebuilds_its_model(tmp_path, suffix):
    model = randomize_(SwinTransformer(**SMALL, window_size=5, num_classes=4, always_partition=True)).eval()
    path = swinseg.save_checkpoint(model, tmp_path / f"m{suffix}")
    again = swinseg.create_model(path).eval()
    assert again.config == model.config
    x = torch.randn(1, 3, 50, 70)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_infer_config_reads_architecture_off_shapes():
    sd = to_native(from_native(_sd(window_size=6, num_classes=9, out_indices=(1, 3)), "official"))
    config = infer_config(sd)
    assert config["embed_dims"] == 16 and config["depths"] == [2, 2, 2, 2] and config["num_heads"] == [1, 2, 2, 4]
    assert config["window_size"] == 6 and config["num_classes"] == 9 and config["mlp_ratio"] == 4.0


def test_unknown_layout_is_named():
    with pytest.raises(ValueError, match="first keys: foo.weight"):
        detect_format({"foo.weight": torch.zeros(1)})


class _Payload:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_pickle_with_code_is_refused(tmp_path, writer, capsys):
    payload = {"state_dict": {"x": _Payload(), "y": torch.zeros(1)}}
    if writer == "pickle":
        with open(tmp_path / "evil.pth", "wb") as f:
            pickle.dump(payload, f)
    else:
        torch.save(payload, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="refusing to load"):
        swinseg.load_checkpoint(SwinTransformer(**SMALL), tmp_path / "evil.pth")
    assert "this ran" not in capsys.readouterr().out


class _History:
    """Stands for MMEngine's HistoryBuffer, which its runners pickle into checkpoints."""

    def __init__(self):
        self.values = np.array([1.0, 2.0])


_History.__module__ = "mmengine"


def test_mmengine_checkpoint_with_bookkeeping_loads(tmp_path, monkeypatch):
    import sys
    import types

    module = types.ModuleType("mmengine")
    module._History = _History
    monkeypatch.setitem(sys.modules, "mmengine", module)
    sd = {f"backbone.{k}": v for k, v in from_native(_sd(), "mmseg").items()}
    meta = {"seed": np.int64(3), "dataset_meta": {"classes": ("wall", "floor"), "palette": [[1, 2, 3], [4, 5, 6]]}}
    torch.save({"state_dict": sd, "meta": meta, "message_hub": {"log_scalars": {"loss": _History()}}}, tmp_path / "mm.pth")
    monkeypatch.delitem(sys.modules, "mmengine")
    model = SwinTransformer(**SMALL)
    assert swinseg.load_checkpoint(model, tmp_path / "mm.pth").format == "mmseg"
    _, read_meta = swinseg.weights.io.read_checkpoint(tmp_path / "mm.pth")
    assert read_meta["dataset_meta"]["classes"] == ("wall", "floor")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_file_is_a_clear_error(tmp_path, suffix):
    path = swinseg.save_checkpoint(SwinTransformer(**SMALL), tmp_path / f"m{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=str(path)):
        swinseg.load_checkpoint(SwinTransformer(**SMALL), path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        swinseg.load_checkpoint(SwinTransformer(**SMALL), path)
