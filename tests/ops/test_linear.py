"""Both linear kernels (with and without the fused GELU) against a float64 computation, in float32
and bfloat16; gradients and tracing fall back to ``F.linear``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from swinseg import ops
from swinseg.ops.linear import KERNELS


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_kernels_match_float64(kernel: str, gelu: bool, bias: bool) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(48, 40, bias=bias)
    x = torch.randn(2, 7, 9, 48)
    exact = F.linear(x.double(), layer.weight.double(), None if layer.bias is None else layer.bias.double())
    exact = F.gelu(exact) if gelu else exact
    with torch.inference_mode(), ops.forced(linear=kernel):
        out = ops.linear(x, layer, gelu=gelu)
        low = ops.linear(x.bfloat16(), layer.bfloat16(), gelu=gelu)
    assert out.shape == (2, 7, 9, 40) and low.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), exact, rtol=1e-5, atol=1e-5)
    assert (low.double() - exact).abs().max() < 0.05 * exact.abs().max()


def test_gradients_take_f_linear(fresh) -> None:
    layer = nn.Linear(8, 4)
    x = torch.randn(3, 8, requires_grad=True)
    with ops.forced(linear="onednn"):
        ops.linear(x, layer, gelu=True).sum().backward()
    expected = torch.autograd.grad(F.gelu(F.linear(x, layer.weight, layer.bias)).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)
    assert not any(key.startswith("linear/") for key in ops.choices())


def test_weights_updated_by_the_fused_optimizer_are_used_at_once() -> None:
    """The fused AdamW changes weights without bumping their version counter: inference right
    after a step must see the new weights (no stale copy of them anywhere)."""
    layer = nn.Linear(16, 8)
    x = torch.randn(5, 16)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, fused=True)
    with ops.forced(linear="onednn"):
        with torch.no_grad():
            ops.linear(x, layer, gelu=True)
        layer(x).square().sum().backward()
        optimizer.step()
        with torch.no_grad():
            torch.testing.assert_close(ops.linear(x, layer, gelu=True), F.gelu(F.linear(x, layer.weight, layer.bias)))


@pytest.mark.parametrize("kernel", ["aten", "onednn"])
def test_bf16_runs_with_either_kernel_forced_on_any_cpu(kernel):
    """oneDNN has no bf16 matmul on AVX2 CPUs ("could not create a primitive descriptor"): the
    bf16 call must still run, matching F.linear in bf16."""
    layer = nn.Linear(96, 288).bfloat16()
    x = torch.randn(3, 49, 96).bfloat16()
    with torch.no_grad(), ops.forced(linear=kernel):
        out = ops.linear(x, layer, gelu=True)
    torch.testing.assert_close(out.float(), F.gelu(F.linear(x, layer.weight, layer.bias)).float(), atol=0.05, rtol=0.02)
