"""Every window attention kernel against a float64 computation by hand and against the others,
values and gradients; bf16 within bf16's rounding."""

from __future__ import annotations

import pytest
import torch

from swinseg import ops
from swinseg.ops.attention import KERNELS


def _reference(q, k, v, mask, scale):
    q, k, v, mask = (t.double() for t in (q, k, v, mask))
    scores = scale * q @ k.transpose(-1, -2) + mask
    return scores.softmax(-1) @ v


def _inputs(batch: int, windows: int, heads: int, tokens: int, dims: int, mask_windows: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(3, batch, windows, heads, tokens, dims, generator=g).unbind(0)
    mask = torch.randn(mask_windows, heads, tokens, tokens, generator=g)
    mask[..., : tokens // 2, tokens // 2 :] = -100.0  # a shift mask's blocks: denormal probabilities
    return q, k, v, mask


@pytest.mark.parametrize("kernel", KERNELS[:2])
@pytest.mark.parametrize("shape", [(2, 4, 3, 49, 32, 4), (1, 3, 2, 9, 8, 1), (3, 1, 24, 49, 32, 1)])
def test_float32_kernels_match_float64_values_and_gradients(kernel: str, shape: tuple[int, ...]) -> None:
    q, k, v, mask = _inputs(*shape)
    leaves = [t.clone().requires_grad_() for t in (q, k, v, mask)]
    with ops.forced(attention=kernel):
        out = ops.window_attention(*leaves, scale=0.18)
    expected = _reference(q, k, v, mask, 0.18)
    assert out.shape == expected.shape
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), leaves)
    exact = [t.double().requires_grad_() for t in (q, k, v, mask)]
    expected_grads = torch.autograd.grad(_reference(*exact, 0.18).square().sum(), exact)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g.double(), e, rtol=1e-4, atol=1e-4)


def test_bfloat16_kernels_agree_within_bfloat16_rounding() -> None:
    q, k, v, mask = (t.bfloat16() for t in _inputs(2, 4, 3, 49, 32, 4, seed=1))
    expected = _reference(q, k, v, mask, 0.18)
    scale = expected.abs().max()
    for kernel in KERNELS:
        with ops.forced(attention=kernel):
            out = ops.window_attention(q, k, v, mask, scale=0.18)
        assert out.dtype == torch.bfloat16
        assert (out.double() - expected).abs().max() < 2e-2 * scale, kernel
