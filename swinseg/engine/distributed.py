"""Distributed helpers that work unchanged in one process."""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["get_world_size", "sync_batchnorm"]


def get_world_size() -> int:
    """Processes in the default group; 1 without one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def sync_batchnorm(model: nn.Module, device: torch.device | str) -> nn.Module:
    """BatchNorm -> SyncBatchNorm when several processes train on GPUs (the reference configs'
    ``SyncBN``); plain BatchNorm in one process, so no config ever needs editing for it.

    PyTorch's SyncBatchNorm runs on GPUs only: several CPU processes keep per-process BatchNorm
    statistics, with a warning.
    """
    if get_world_size() == 1:
        return model
    if torch.device(device).type == "cpu":
        warnings.warn("SyncBatchNorm needs GPUs: each CPU process keeps its own BatchNorm statistics", stacklevel=2)
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
