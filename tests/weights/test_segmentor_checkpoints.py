"""Segmentor checkpoints: MMSegmentation 0.x / 1.x, the official segmentation repo, native; class
names and palettes; backbones in and out; the model-zoo download path."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

import swinseg
from swinseg.models import zoo
from swinseg.weights import detect_format, from_native

from ..helpers import max_diff, randomize_

TINY = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"
SMALL = dict(
    backbone=dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4]),
    decode_head=dict(channels=16, num_classes=4),
    auxiliary_head=dict(channels=8, num_classes=4),
)
CLASSES = ("sky", "tree", "road", "car")
PALETTE = [[0, 0, 255], [0, 255, 0], [128, 128, 128], [255, 0, 0]]


@pytest.fixture
def source():
    return randomize_(swinseg.create_model(TINY, **SMALL)).eval()


def _same_outputs(a, b):
    x = torch.randn(1, 3, 70, 90, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return max_diff(a.encode_decode(x), b.encode_decode(x)) < 1e-5


def _mmseg_state(model):
    return {f"backbone.{k}": v for k, v in from_native(model.backbone.state_dict(), "mmseg").items()} | {
        k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")
    }


def test_mmseg_1x_checkpoint_loads_strictly_with_dataset_meta(tmp_path, source):
    # MMEngine's runner saves meta, state_dict, message_hub, optimizer, param_schedulers
    ckpt = {
        "meta": {"dataset_meta": {"classes": CLASSES, "palette": PALETTE}, "mmseg_version": "1.2.2", "iter": 160000},
        "state_dict": _mmseg_state(source),
        "optimizer": {"state": {}, "param_groups": []},
    }
    torch.save(ckpt, tmp_path / "iter_160000.pth")
    model = swinseg.create_model(TINY, **SMALL)
    report = swinseg.load_checkpoint(model, tmp_path / "iter_160000.pth")
    assert report.format == "mmseg" and not report.missing and not report.unexpected and not report.expected_missing
    assert model.dataset_meta == {"classes": list(CLASSES), "palette": PALETTE}
    assert _same_outputs(model.eval(), source)


def test_mmseg_0x_checkpoint_with_classes_and_palette(tmp_path, source):
    ckpt = {
        "meta": {"CLASSES": CLASSES, "PALETTE": PALETTE, "mmseg_version": "0.14.1", "config": "model = dict(...)"},
        "state_dict": _mmseg_state(source),
    }
    torch.save(ckpt, tmp_path / "upernet.pth")
    model = swinseg.create_model(tmp_path / "upernet.pth").eval()  # architecture read off the shapes
    assert model.config["decode_head"]["channels"] == 16 and model.config["auxiliary_head"]["in_index"] == 2
    assert model.dataset_meta["classes"] == list(CLASSES)
    assert _same_outputs(model, source)


def test_official_segmentation_repo_checkpoint(tmp_path, source):
    """Swin-Transformer-Semantic-Segmentation: official ``layers.*`` backbone with mmcv heads."""
    state = {f"backbone.{k}": v for k, v in from_native(source.backbone.state_dict(), "official").items()}
    state |= {k: v for k, v in source.state_dict().items() if not k.startswith("backbone.")}
    assert any(k.startswith("backbone.layers.0.downsample.") for k in state)
    assert detect_format(state) == "official"
    torch.save({"meta": {"CLASSES": CLASSES, "PALETTE": PALETTE}, "state_dict": state}, tmp_path / "official.pth")
    model = swinseg.create_model(TINY, **SMALL)
    report = swinseg.load_checkpoint(model, tmp_path / "official.pth")
    assert report.format == "official" and not report.missing and not report.unexpected
    assert _same_outputs(model.eval(), source)


@pytest.mark.parametrize("layout,suffix", [("mmseg", ".pth"), ("official", ".pth"), ("hf", ".safetensors"), ("native", ".pth")])
def test_convert_round_trips(tmp_path, source, layout, suffix):
    source.dataset_meta = {"classes": list(CLASSES), "palette": PALETTE}
    swinseg.save_checkpoint(source, tmp_path / "ours.safetensors")
    swinseg.convert_checkpoint(tmp_path / "ours.safetensors", tmp_path / f"out{suffix}", to=layout)
    model = swinseg.create_model(tmp_path / f"out{suffix}").eval()
    assert _same_outputs(model, source)
    if layout != "hf":
        assert model.dataset_meta == source.dataset_meta


def test_timm_has_no_segmentor_layout(tmp_path, source):
    swinseg.save_checkpoint(source, tmp_path / "ours.safetensors")
    with pytest.raises(ValueError, match="timm has no segmentor layout"):
        swinseg.convert_checkpoint(tmp_path / "ours.safetensors", tmp_path / "out.pth", to="timm")


def test_wrong_class_count_names_the_keys_and_shapes(tmp_path, source):
    swinseg.save_checkpoint(source, tmp_path / "ours.safetensors")
    model = swinseg.create_model(TINY, **{**SMALL, "decode_head": dict(channels=16, num_classes=150), "auxiliary_head": dict(channels=8)})
    with pytest.raises(
        ValueError,
        match=r"classes 4 vs 150; 4 tensors differ in shape: .*conv_seg.weight: checkpoint \(4, 8, 1, 1\) vs model \(150, 8, 1, 1\)",
    ):
        swinseg.load_checkpoint(model, tmp_path / "ours.safetensors")


def test_backbone_checkpoint_goes_into_the_backbone(tmp_path):
    """ImageNet weights (official layout, with classifier) initialise the segmentor's backbone only."""
    classifier = randomize_(swinseg.SwinTransformer(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], num_classes=10))
    torch.save({"model": from_native(classifier.state_dict(), "official")}, tmp_path / "imagenet.pth")
    model = swinseg.create_model(TINY, **SMALL)
    heads_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    report = swinseg.load_checkpoint(model, tmp_path / "imagenet.pth")
    assert not report.missing and not report.unexpected
    assert {"backbone.head.weight", "backbone.norm.weight"} <= set(report.dropped)
    assert any(k.startswith("decode_head.") for k in report.expected_missing)
    assert any(k.startswith("backbone.norm0.") for k in report.expected_missing)
    assert torch.equal(model.backbone.stages[1].blocks[0].attn.qkv.weight, classifier.stages[1].blocks[0].attn.qkv.weight)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in heads_before.items())


def test_segmentor_checkpoint_gives_a_backbone_its_weights(tmp_path, source):
    swinseg.save_checkpoint(source, tmp_path / "seg.safetensors")
    backbone = swinseg.SwinTransformer(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])
    report = swinseg.load_checkpoint(backbone, tmp_path / "seg.safetensors")
    assert not report.missing and not report.unexpected
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(backbone.eval()(x), source.backbone(x), strict=True))


def test_checkpoint_without_auxiliary_head_loads_for_inference(tmp_path, source):
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("auxiliary_head.")}
    torch.save({"state_dict": state}, tmp_path / "no_aux.pth")
    model = swinseg.create_model(TINY, **SMALL)
    report = swinseg.load_checkpoint(model, tmp_path / "no_aux.pth")
    assert all(k.startswith("auxiliary_head.") for k in report.expected_missing) and report.expected_missing
    assert _same_outputs(model.eval(), source)


def test_zoo_download_checks_the_hash_in_the_file_name(tmp_path, swinseg_home, http_server, monkeypatch, source):
    """``create_model(name, pretrained=True)`` downloads the registered URL and checks the
    8-digit SHA-256 prefix that MMSegmentation puts in its file names."""
    root, base = http_server
    tmp = root / "tmp.pth"
    torch.save({"meta": {"CLASSES": CLASSES, "PALETTE": PALETTE}, "state_dict": _mmseg_state(source)}, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    good = root / f"upernet_swin_tiny_20210531_112542-{digest}.pth"
    bad = root / "upernet_swin_tiny_20210531_112542-deadbeef.pth"
    tmp.rename(good)
    bad.write_bytes(good.read_bytes())
    spec = zoo.get_spec(TINY)
    for path, sha in ((good, digest), (bad, "deadbeef")):
        monkeypatch.setitem(zoo._REGISTRY, TINY, dataclasses.replace(spec, url=f"{base}/{path.name}", sha256=sha))
        if path is bad:
            with pytest.raises(RuntimeError, match="checksum mismatch.*deleted"):
                swinseg.create_model(TINY, pretrained=True, **SMALL)
            assert not list(swinseg_home.rglob("*deadbeef*"))
        else:
            model = swinseg.create_model(TINY, pretrained=True, **SMALL).eval()
            assert model.dataset_meta["classes"] == list(CLASSES)
            assert _same_outputs(model, source)
