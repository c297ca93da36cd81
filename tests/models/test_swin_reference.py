"""Parity with installed reference implementations, sharing random weights through our loader.

timm and HF ``SwinForImageClassification`` follow the official classifier; HF ``SwinBackbone``
(pad first, then shift, shifted windows at every size, per-stage norms) follows MMSegmentation.
"""

from __future__ import annotations

import pytest
import timm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import SwinBackbone, SwinConfig, SwinForImageClassification

import swinseg
from swinseg import SwinTransformer
from swinseg.weights.formats import from_native

from ..helpers import max_diff, randomize_

TOL = 1e-4


def _timm_pair(tmp_path, name, **kwargs):
    ref = randomize_(timm.create_model(name, **kwargs)).eval()
    torch.save(ref.state_dict(), tmp_path / "timm.pth")
    ours = swinseg.create_model(name, pretrained=tmp_path / "timm.pth").eval()
    return ref, ours


@pytest.mark.parametrize("name,size", [("swin_tiny_patch4_window7_224", 224), ("swin_base_patch4_window12_384", 384)])
def test_timm_classifier_logits(tmp_path, name, size):
    ref, ours = _timm_pair(tmp_path, name)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert max_diff(ours(x), ref(x)) < TOL


def test_timm_feature_maps(tmp_path):
    ref, ours = _timm_pair(tmp_path, "swin_tiny_patch4_window7_224")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref_maps = ref.forward_intermediates(x, norm=False, intermediates_only=True)
        our_maps = [m.permute(0, 3, 1, 2) for m in ours.forward_stages(x)]
    assert len(ref_maps) == 4
    for a, b in zip(our_maps, ref_maps, strict=True):
        assert max_diff(a, b) < TOL


def _hf_config(**kwargs) -> SwinConfig:
    return SwinConfig(**kwargs)


def test_hf_classifier_logits(tmp_path):
    ref = randomize_(SwinForImageClassification(_hf_config(num_labels=17))).eval()
    ref.save_pretrained(tmp_path / "hf")
    ours = swinseg.create_model("swin_tiny_patch4_window7_224", num_classes=17).eval()
    report = swinseg.load_checkpoint(ours, tmp_path / "hf")
    assert report.format == "hf"
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert max_diff(ours(x), ref(x).logits) < TOL


def _hf_backbone(tmp_path, **kwargs):
    stages = len(kwargs.get("depths", (2, 2, 6, 2)))
    ref = randomize_(SwinBackbone(_hf_config(out_features=[f"stage{i + 1}" for i in range(stages)], **kwargs))).eval()
    ref.save_pretrained(tmp_path / "hfb")
    return ref


@pytest.mark.parametrize("size", [(224, 224), (97, 203), (33, 45), (1, 1)])
def test_hf_backbone_feature_maps_any_size(tmp_path, size):
    ref = _hf_backbone(tmp_path)
    ours = SwinTransformer().eval()
    swinseg.load_checkpoint(ours, tmp_path / "hfb")
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        for a, b in zip(ours(x), ref(x).feature_maps, strict=True):
            assert max_diff(a, b) < TOL


def test_backbone_and_classifier_rules_differ_at_224(tmp_path):
    """At 224 the last stage is one 7x7 window: MMSegmentation still shifts it, the official model does not."""
    ref_cls = randomize_(SwinForImageClassification(_hf_config(num_labels=5))).eval()
    ref_cls.save_pretrained(tmp_path / "hf")
    cls = SwinTransformer(num_classes=5).eval()
    swinseg.load_checkpoint(cls, tmp_path / "hf")
    shifted = SwinTransformer(num_classes=5, always_partition=True).eval()
    shifted.load_state_dict(cls.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        a, b = cls.forward_stages(x), shifted.forward_stages(x)
        for i in range(3):
            assert max_diff(a[i], b[i]) == 0
        assert max_diff(a[3], b[3]) > 1e-3
        assert max_diff(cls(x), ref_cls(x).logits) < TOL


@settings(max_examples=12, deadline=None)
@given(
    h=st.integers(1, 300),
    w=st.integers(1, 300),
    batch=st.integers(1, 2),
    window=st.integers(2, 8),
    depths=st.sampled_from([(2, 2), (1, 3), (2, 2, 2, 2)]),
)
def test_backbone_matches_hf_for_any_size_and_window(tmp_path_factory, h, w, batch, window, depths):
    tmp = tmp_path_factory.mktemp("hf")
    heads = (1, 2, 2, 4)[: len(depths)]
    ref = _hf_backbone(tmp, embed_dim=8, depths=list(depths), num_heads=list(heads), window_size=window)
    ours = SwinTransformer(
        embed_dims=8,
        depths=depths,
        num_heads=heads,
        window_size=window,
        strides=(4,) + (2,) * (len(depths) - 1),
        out_indices=tuple(range(len(depths))),
    ).eval()
    swinseg.load_checkpoint(ours, tmp / "hfb")
    x = torch.randn(batch, 3, h, w)
    with torch.no_grad():
        for a, b in zip(ours(x), ref(x).feature_maps, strict=True):
            assert max_diff(a, b) < TOL


@settings(max_examples=8, deadline=None)
@given(scale=st.integers(1, 3), window=st.integers(2, 7), batch=st.integers(1, 2))
def test_padding_free_sizes_match_timm(tmp_path_factory, scale, window, batch):
    """At sizes that need no padding anywhere, ours equals timm, which pads differently (shift, then pad)."""
    size = 4 * window * 8 * scale
    tmp = tmp_path_factory.mktemp("timm")
    ref = randomize_(
        timm.models.swin_transformer.SwinTransformer(
            img_size=size, embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=window, num_classes=3
        )
    ).eval()
    torch.save(ref.state_dict(), tmp / "t.pth")
    ours = SwinTransformer(embed_dims=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=window, num_classes=3).eval()
    swinseg.load_checkpoint(ours, tmp / "t.pth")
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        assert max_diff(ours(x), ref(x)) < TOL


def test_exports_load_into_timm_and_hf(tmp_path):
    ours = randomize_(swinseg.create_model("swin_tiny_patch4_window7_224", num_classes=11)).eval()
    path = swinseg.save_checkpoint(ours, tmp_path / "ours.safetensors")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = ours(x)

    swinseg.convert_checkpoint(path, tmp_path / "timm.pth", to="timm")
    ref = timm.create_model("swin_tiny_patch4_window7_224", num_classes=11).eval()
    ref.load_state_dict(torch.load(tmp_path / "timm.pth"), strict=True)
    with torch.no_grad():
        assert max_diff(ref(x), expected) < TOL

    (tmp_path / "hf").mkdir()
    _hf_config(num_labels=11).save_pretrained(tmp_path / "hf")
    swinseg.convert_checkpoint(path, tmp_path / "hf" / "model.safetensors", to="hf")
    hf = SwinForImageClassification.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        assert max_diff(hf(x).logits, expected) < TOL


@pytest.mark.parametrize("with_cp", [False, True])
def test_training_gradients_match_timm(tmp_path, with_cp):
    """Training recomputes part of every block in the backward pass (selectively, or all of it
    with ``with_cp``); the gradients must still be timm's plain autograd ones."""
    ref = randomize_(timm.create_model("swin_tiny_patch4_window7_224", drop_path_rate=0.0)).train()
    torch.save(ref.state_dict(), tmp_path / "timm.pth")
    ours = swinseg.create_model(
        "swin_tiny_patch4_window7_224", pretrained=tmp_path / "timm.pth", drop_path_rate=0.0, with_cp=with_cp
    ).train()
    x = torch.randn(2, 3, 224, 224)
    weights = torch.randn(2, 1000)
    grads = {}
    for name, model in (("timm", ref), ("ours", ours)):
        image = x.clone().requires_grad_()
        (model(image) * weights).sum().backward()
        grads[name] = image.grad
    assert max_diff(grads["ours"], grads["timm"]) < 1e-5 * grads["timm"].abs().max()
    ours_as_timm = from_native({n: p.grad for n, p in ours.named_parameters()}, "timm")
    ref_grads = dict(ref.named_parameters())
    assert ours_as_timm.keys() <= ref_grads.keys() and len(ours_as_timm) == len(ref_grads)
    for name, grad in ours_as_timm.items():
        expected = ref_grads[name].grad
        assert max_diff(grad, expected) <= 1e-4 * expected.abs().max() + 1e-7, name


@pytest.mark.parametrize("kernels", [{"attention": "sdpa", "linear": "onednn"}, {"attention": "bmm", "linear": "aten", "chunk": "2048"}])
def test_every_kernel_gives_timm_logits(tmp_path, kernels):
    """Each attention and linear candidate of swinseg.ops, forced, against timm with shared weights."""
    ref, ours = _timm_pair(tmp_path, "swin_tiny_patch4_window7_224")
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad(), swinseg.ops.forced(**kernels):
        assert max_diff(ours(x), ref(x)) < TOL
