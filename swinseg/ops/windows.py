"""Window geometry: the relative position index (the attention's bias lookup, the weight
layouts), the shifted windows' mask, and the token permutation of pad, roll and partition as
two gathers (how :func:`~swinseg.ops.blocks.swin_block` runs the windows)."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["padded", "relative_position_index", "shift_window_mask", "window_order"]


def padded(size: int, multiple: int) -> int:
    """``size`` rounded up to a multiple of ``multiple``; written so that traced sizes simplify."""
    return (size + multiple - 1) // multiple * multiple


def window_coordinates(height: int, width: int, window: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Row and column in a ``height`` x ``width`` map (multiples of ``window``) of each position
    of window order (windows row by row, the tokens of a window row by row): two (height * width,)
    long tensors. Built by broadcasting, so that traced sizes add no guards."""
    shape = (height // window, width // window, window, window)
    rows = torch.arange(height, device=device).view(-1, 1, window, 1).expand(shape)
    cols = torch.arange(width, device=device).view(1, -1, 1, window).expand(shape)
    return rows.flatten(), cols.flatten()


def shift_window_mask(height: int, width: int, window: int, shift: int, device: torch.device | None = None) -> Tensor:
    """Additive attention mask for shifted windows over a padded ``height`` x ``width`` map.

    After the cyclic shift, a window at the map's bottom or right edge holds tokens from regions
    that were not neighbours: along each axis the slices ``[0, -window)``, ``[-window, -shift)``,
    ``[-shift, end)`` form three regions, and token pairs from different regions get -100.
    Returns (num_windows, N, N).
    """

    def regions(size: int) -> Tensor:
        idx = torch.arange(size, device=device)
        return (idx >= size - window).long() + (idx >= size - shift).long()

    rows, cols = window_coordinates(height, width, window, device)
    region = (regions(height)[rows] * 3 + regions(width)[cols]).view(-1, window * window)
    different = region[:, :, None] != region[:, None, :]
    return torch.zeros(different.shape, device=device).masked_fill_(different, -100.0)


def window_order(height: int, width: int, window: int, shift: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """The token permutation of shifted-window attention on a ``height`` x ``width`` map.

    Padding bottom/right to multiples of ``window`` (``Hp``, ``Wp``), rolling by ``-shift`` and
    partitioning into windows reorder the tokens. ``order`` (Hp * Wp,): for each window-order
    position, its token's index in the padded map; ``inverse`` (height * width,): for each token
    of the map, its window-order position (the reverse: unpartition, roll back and crop).
    """
    Hp, Wp = padded(height, window), padded(width, window)
    rows, cols = window_coordinates(Hp, Wp, window, device)
    if shift:
        rows = torch.roll(torch.arange(Hp, device=device), -shift)[rows]
        cols = torch.roll(torch.arange(Wp, device=device), -shift)[cols]
    index = torch.arange(Hp * Wp, device=device)
    order = index.view(Hp, Wp)[rows, cols]
    position = torch.empty_like(index).scatter_(0, order, index).view(Hp, Wp)
    inverse = position[torch.arange(height, device=device)[:, None], torch.arange(width, device=device)[None, :]]
    return order, inverse.flatten()


@lru_cache(maxsize=64)
def cached_window_order(height: int, width: int, window: int, shift: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """:func:`window_order`, kept per size (usable by training after an inference-mode call made it)."""
    with torch.inference_mode(False):
        return window_order(height, width, window, shift, device)


def relative_position_index(window: int, table_window: int) -> Tensor:
    """Index into a ((2M-1)^2, heads) bias table for every token pair of a ``window`` x ``window`` window.

    ``index[p, q] = (dy + M - 1) * (2M - 1) + (dx + M - 1)`` with ``(dy, dx) = pos(p) - pos(q)``
    and ``M = table_window >= window``. Returns a (window^2, window^2) long tensor.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (table_window - 1)
    return rel[0] * (2 * table_window - 1) + rel[1]
