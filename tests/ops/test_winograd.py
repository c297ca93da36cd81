"""Winograd F(2x2, 3x3) convolution against ``F.conv2d``: values and both gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from swinseg import ops
from swinseg.models.heads import ConvModule
from swinseg.ops import winograd
from swinseg.ops.winograd import filter_transform, filter_transform_adjoint, winograd_conv3x3


def _both(conv, x: torch.Tensor, w: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    y = conv(x, w)
    return (y, *torch.autograd.grad(y, (x, w), grad))


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 2),
    channels=st.integers(1, 6),
    out_channels=st.integers(1, 5),
    height=st.integers(1, 13),
    width=st.integers(1, 13),
    band_tiles=st.integers(1, 4),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_conv2d_in_float64(batch, channels, out_channels, height, width, band_tiles, channels_last, seed) -> None:
    """Every size, odd ones included, and bands of a few tile rows (the last one short): the
    transforms are exact, so only float64 round-off separates the two."""
    cols = (width + 1) // 2
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, height, width, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(out_channels, channels, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(batch, out_channels, height, width, generator=g, dtype=torch.float64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winograd, "_BAND_ELEMENTS", 16 * cols * max(channels, out_channels) * band_tiles)
        ours = _both(winograd_conv3x3, x, w, grad)
    reference = _both(lambda a, b: F.conv2d(a, b, padding=1), x, w, grad)
    for name, a, b in zip(("output", "input gradient", "weight gradient"), ours, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)


def test_float32_error_is_at_most_that_of_pytorch_direct_kernel() -> None:
    """Head-sized case in float32 against a float64 reference: no less accurate than ``F.conv2d``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, 32, 32, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 256, 3, 3, generator=g) / 48
    exact = F.conv2d(x.double(), w.double(), padding=1)
    ours = (winograd_conv3x3(x, w).double() - exact).abs().max()
    direct = (F.conv2d(x, w, padding=1).double() - exact).abs().max()
    assert ours <= 1.5 * direct
    assert ours / exact.abs().max() < 1e-6


def test_filter_transform_adjoint_is_its_gradient() -> None:
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(16, 3, 2, dtype=torch.float64)
    (expected,) = torch.autograd.grad(filter_transform(w), w, grad)
    torch.testing.assert_close(filter_transform_adjoint(grad), expected)


def test_autocast_runs_in_its_dtype_within_three_times_the_error_of_conv2d() -> None:
    """bfloat16 rounds the transformed tiles and products too: a few times the error of PyTorch's
    bfloat16 kernel, both measured against float64."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 128, 48, 48, generator=g).relu().requires_grad_()
    w = (torch.randn(64, 128, 3, 3, generator=g) / 25).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = winograd_conv3x3(x, w)
        direct = F.conv2d(x, w, padding=1)
    assert y.dtype == direct.dtype == torch.bfloat16
    exact = F.conv2d(x.double(), w.double(), padding=1)
    rms = [(out.double() - exact).pow(2).mean().sqrt() for out in (y, direct)]
    assert rms[0] <= 3 * rms[1]
    y.float().sum().backward()
    assert w.grad.dtype == torch.float32 and x.grad.dtype == torch.float32


def test_conv_module_keeps_mmcv_parameters_and_matches_its_conv() -> None:
    module = ConvModule(8, 4, 3).eval()
    assert set(dict(module.named_parameters())) == {"conv.weight", "bn.weight", "bn.bias"}
    x = torch.randn(2, 8, 48, 48)
    with torch.no_grad(), ops.forced(conv3x3="winograd"):
        expected = module.activate(module.bn(module.conv(x)))
        torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)
