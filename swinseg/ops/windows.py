"""Window geometry that the attention's bias lookup and the weight layouts share."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["relative_position_index"]


def relative_position_index(window: int, table_window: int) -> Tensor:
    """Index into a ((2M-1)^2, heads) bias table for every token pair of a ``window`` x ``window`` window.

    ``index[p, q] = (dy + M - 1) * (2M - 1) + (dx + M - 1)`` with ``(dy, dx) = pos(p) - pos(q)``
    and ``M = table_window >= window``. Returns a (window^2, window^2) long tensor.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (table_window - 1)
    return rel[0] * (2 * table_window - 1) + rel[1]
