"""Test helpers: random weights that exercise every parameter."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every parameter with random values (LayerNorm weights near 1) so no term is trivially zero."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen)
        if p.ndim == 1 and ("norm" in name or "layernorm" in name):
            p.copy_(1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
        else:
            p.copy_(0.05 * noise)
    return model


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()
