"""Test helpers: random weights that exercise every parameter."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every parameter and BatchNorm statistic with random values (norm weights near 1) so no term is trivially zero."""
    gen = torch.Generator().manual_seed(seed)
    norms = {f"{m}.{p}" for m, mod in model.named_modules() if isinstance(mod, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm))
             for p in ("weight", "bias")}
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen)
        if name in norms or (p.ndim == 1 and "norm" in name):
            p.copy_(1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
        else:
            p.copy_(0.05 * noise)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=gen))
    return model


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()
