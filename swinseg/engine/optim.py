"""The Swin configs' optimizer and learning-rate schedule: AdamW without weight decay on norms,
position tables and embeddings; MMEngine's LinearLR warm-up followed by PolyLR."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..configs.rules import CONFIG_RULES, check_rules

__all__ = ["no_decay_names", "build_optimizer", "WarmupPolyLR"]


def no_decay_names(model: nn.Module, keys: Sequence[str]) -> list[str]:
    """Names of the trainable parameters that MMEngine's ``paramwise_cfg.custom_keys`` with
    ``decay_mult=0`` exempts from weight decay: those whose full name contains any of ``keys``."""
    return [name for name, p in model.named_parameters() if p.requires_grad and any(k in name for k in keys)]


def build_optimizer(
    model: nn.Module,
    lr: float = 6e-5,
    betas: Sequence[float] = (0.9, 0.999),
    weight_decay: float = 0.01,
    no_decay_keys: Sequence[str] = ("absolute_pos_embed", "relative_position_bias_table", "norm"),
) -> torch.optim.AdamW:
    """AdamW over two groups: ``weight_decay`` for most parameters, 0 for :func:`no_decay_names`.

    The update runs as PyTorch's fused kernel (one pass over all parameters; HF's Trainer default)."""
    exempt = set(no_decay_names(model, no_decay_keys))
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in params if n not in exempt], "weight_decay": weight_decay},
        {"params": [p for n, p in params if n in exempt], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=True)


@dataclass(frozen=True)
class WarmupPolyLR:
    """The learning rate of iteration ``t`` as MMEngine's ``LinearLR(start_factor, begin=0,
    end=warmup_iters)`` followed by ``PolyLR(power, eta_min, begin=warmup_iters, end=max_iters)``,
    both stepped once per iteration, in closed form:

    - ``t < warmup_iters``: ``lr * (start + (1 - start) * t / (warmup_iters - 1))``
    - otherwise: ``(lr - eta_min) * (1 - (t - warmup_iters) / (max_iters - warmup_iters - 1)) ** power + eta_min``

    (MMEngine's schedulers count ``end - begin - 1`` steps, so warm-up reaches the full rate at
    ``warmup_iters - 1`` and the last iteration trains at ``eta_min``.) Stateless: resuming only
    needs the iteration.
    """

    max_iters: int = 160000
    warmup_iters: int = 1500
    warmup_start_factor: float = 1e-6
    power: float = 1.0
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        check_rules(vars(self), CONFIG_RULES["schedule"], "schedule.")
        if not 0 <= self.warmup_iters < self.max_iters - 1:
            raise ValueError(f"schedule: warmup_iters={self.warmup_iters} must lie in [0, max_iters - 1) (max_iters={self.max_iters})")

    def lr(self, base_lr: float, t: int) -> float:
        if t < self.warmup_iters:
            span = max(self.warmup_iters - 1, 1)
            return base_lr * (self.warmup_start_factor + (1.0 - self.warmup_start_factor) * t / span)
        progress = min(t - self.warmup_iters, self.max_iters - self.warmup_iters - 1) / (self.max_iters - self.warmup_iters - 1)
        return (base_lr - self.eta_min) * (1.0 - progress) ** self.power + self.eta_min

    def apply(self, optimizer: torch.optim.Optimizer, t: int) -> float:
        """Set every group's rate for iteration ``t`` from its ``initial_lr``; returns the first."""
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = self.lr(group["initial_lr"], t)
        return optimizer.param_groups[0]["lr"]
