"""Parity with HF transformers' ``UperNetForSemanticSegmentation`` (Swin backbone), sharing random
weights through our converter in both directions."""

from __future__ import annotations

import pytest
import torch
from transformers import SwinConfig, UperNetConfig, UperNetForSemanticSegmentation

import swinseg

from ..helpers import max_diff, randomize_

TOL = 1e-4
TINY = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"


def _hf_upernet(window: int = 7) -> UperNetForSemanticSegmentation:
    backbone = SwinConfig(
        embed_dim=16,
        depths=[2, 2, 2, 2],
        num_heads=[1, 2, 2, 4],
        window_size=window,
        drop_path_rate=0.0,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = UperNetConfig(backbone_config=backbone, hidden_size=24, auxiliary_in_channels=64, auxiliary_channels=8, num_labels=6)
    return randomize_(UperNetForSemanticSegmentation(config)).eval()


@pytest.mark.parametrize("size", [(512, 512), (300, 451)])
def test_hf_upernet_checkpoint_gives_hf_logits(tmp_path, size):
    ref = _hf_upernet()
    ref.save_pretrained(tmp_path / "hf")
    ours = swinseg.create_model(tmp_path / "hf").eval()
    assert ours.config["decode_head"]["channels"] == 24 and ours.num_classes == 6
    assert ours.dataset_meta["classes"] == [ref.config.id2label[i] for i in range(6)]
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        expected = ref(pixel_values=x).logits
        assert max_diff(ours.encode_decode(x), expected) < TOL


def test_hf_upernet_loads_into_a_named_config(tmp_path):
    ref = _hf_upernet(window=12)
    ref.save_pretrained(tmp_path / "hf")
    ours = swinseg.create_model(
        TINY,
        pretrained=tmp_path / "hf",
        backbone=dict(embed_dims=16, num_heads=[1, 2, 2, 4], depths=[2, 2, 2, 2], window_size=12),
        decode_head=dict(channels=24, num_classes=6),
        auxiliary_head=dict(channels=8, num_classes=6),
    ).eval()
    x = torch.randn(1, 3, 200, 260)
    with torch.no_grad():
        assert max_diff(ours.encode_decode(x), ref(pixel_values=x).logits) < TOL


def test_export_to_hf_upernet(tmp_path):
    ours = randomize_(
        swinseg.create_model(
            TINY,
            backbone=dict(embed_dims=16, num_heads=[1, 2, 2, 4], depths=[2, 2, 2, 2]),
            decode_head=dict(channels=24, num_classes=6),
            auxiliary_head=dict(channels=8, num_classes=6),
        )
    ).eval()
    ours.dataset_meta = {"classes": list("abcdef"), "palette": [[i, i, i] for i in range(6)]}
    swinseg.save_checkpoint(ours, tmp_path / "ours.safetensors")
    swinseg.convert_checkpoint(tmp_path / "ours.safetensors", tmp_path / "hf", to="hf")
    ref = UperNetForSemanticSegmentation.from_pretrained(tmp_path / "hf").eval()
    assert ref.config.id2label == dict(enumerate("abcdef"))
    x = torch.randn(1, 3, 180, 333)
    with torch.no_grad():
        out = ref(pixel_values=x, output_hidden_states=False)
        assert max_diff(out.logits, ours.encode_decode(x)) < TOL
        aux = ours.auxiliary_head(ours.extract_feat(x))
        ref_aux = ref.auxiliary_head(ref.backbone.forward_with_filtered_kwargs(x).feature_maps)
        assert max_diff(aux, ref_aux) < TOL


@pytest.mark.parametrize(
    "kernels",
    [
        {"attention": "sdpa", "linear": "onednn", "conv3x3": "winograd", "chunk": "2048"},
        {"attention": "bmm", "linear": "aten", "conv3x3": "direct", "chunk": "whole"},
        {"attention": "sdpa", "linear": "aten", "conv3x3": "direct_nhwc", "chunk": "8192"},
    ],
)
def test_every_kernel_gives_hf_logits(tmp_path, kernels):
    """Each candidate of swinseg.ops, forced, against HF's UPerNet with shared weights."""
    ref = _hf_upernet()
    ref.save_pretrained(tmp_path / "hf")
    ours = swinseg.create_model(tmp_path / "hf").eval()
    x = torch.randn(2, 3, 256, 320)
    with torch.no_grad(), swinseg.ops.forced(**kernels):
        assert max_diff(ours.encode_decode(x), ref(pixel_values=x).logits) < TOL
