"""Named models: parameter counts against the published and timm's, config overrides."""

from __future__ import annotations

import pytest
import timm
import torch

import swinseg
from swinseg.models import swin_b, swin_l, swin_s, swin_t

from ..helpers import max_diff


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_swin_tiny_has_the_published_parameter_count():
    assert _count(swinseg.create_model("swin_tiny_patch4_window7_224")) == 28_288_354


@pytest.mark.parametrize("name", swinseg.list_models("swin_*"))
def test_parameter_counts_equal_timm(name):
    classes = 21841 if name.endswith("_22k") else 1000
    with torch.device("meta"):
        ours = swinseg.create_model(name)
        ref = timm.create_model(name.removesuffix("_22k"), num_classes=classes)
    assert ours.num_classes == classes
    assert _count(ours) == _count(ref)


def test_overrides_merge_and_unknown_keys_are_named():
    model = swinseg.create_model("swin_tiny_patch4_window7_224", num_classes=0, embed_dims=48, with_cp=True)
    assert model.num_features[0] == 48 and model.num_classes == 0
    with pytest.raises(KeyError, match="'embed_dim'.*did you mean 'embed_dims'"):
        swinseg.create_model("swin_tiny_patch4_window7_224", embed_dim=32)
    with pytest.raises(KeyError, match="did you mean swin_tiny_patch4_window7_224"):
        swinseg.create_model("swin_tiny_patch4_window7")


def test_seed_package_constructors_build_the_real_model():
    model = swin_t(
        hidden_dim=96,
        layers=(2, 2, 6, 2),
        heads=(3, 6, 12, 24),
        channels=3,
        num_classes=3,
        head_dim=32,
        window_size=7,
        downscaling_factors=(4, 2, 2, 2),
        relative_pos_embedding=True,
    )
    assert _count(model) == 28_288_354 - 769 * (1000 - 3)
    reference = swinseg.create_model("swin_tiny_patch4_window7_224", num_classes=3)
    reference.load_state_dict(model.state_dict())
    model.eval(), reference.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert max_diff(model(x), reference(x)) == 0
    for fn, name in ((swin_s, "small"), (swin_b, "base"), (swin_l, "large")):
        with torch.device("meta"):
            assert _count(fn()) == _count(swinseg.create_model(f"swin_{name}_patch4_window7_224"))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(relative_pos_embedding=False), "relative position bias"),
        (dict(head_dim=64), "head_dim=64 does not fit"),
        (dict(heads=(3, 6, 12, 12)), "does not fit"),
        (dict(downscaling_factors=(4, 2, 3, 2)), "must be 2"),
        (dict(layers=(2, 2, 6)), "one entry per stage"),
    ],
)
def test_seed_arguments_the_architecture_cannot_express_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        swin_t(**kwargs)
