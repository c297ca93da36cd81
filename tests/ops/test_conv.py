"""Every 3x3 convolution kernel against a float64 ``F.conv2d``, values and gradients (Winograd's
own properties are in test_winograd.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from swinseg import ops
from swinseg.ops.conv import KERNELS


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shape", [(2, 5, 17, 50), (1, 8, 64, 40)])
def test_kernels_match_float64(kernel: str, shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g, requires_grad=True)
    w = torch.randn(6, shape[1], 3, 3, generator=g, requires_grad=True)
    with ops.forced(conv3x3=kernel):
        out = ops.conv3x3(x, w)
    exact = F.conv2d(x.double(), w.double(), padding=1)
    torch.testing.assert_close(out.double(), exact, rtol=1e-5, atol=1e-4)
    grads = torch.autograd.grad(out.square().sum(), (x, w))
    expected = torch.autograd.grad(exact.square().sum(), (x, w))
    for a, b in zip(grads, expected, strict=True):
        torch.testing.assert_close(a.double(), b.double(), rtol=1e-4, atol=1e-3)
