"""3x3 convolution (stride 1, padding 1, no bias) by Winograd's minimal filtering F(2x2, 3x3).

Every 2x2 block of outputs comes from the 4x4 input tile around it as
``A^T [(G g G^T) * (B^T d B)] A`` summed over input channels: after the tile and filter transforms
the convolution is 16 matrix products over channels, with 16 multiplications per block of four
outputs instead of 36. The transforms only add, subtract and halve, so float32 results agree with
a direct convolution to round-off (closer to a float64 reference than PyTorch's own CPU kernel).

The head's 3x3 convolutions (``fpn_bottleneck``: 2048 -> 512 channels at 1/4 of the image) are
most of UPerNet's time on a CPU. On the AMD EPYC this was written on it ran them in about 55% of
the time of ``F.conv2d``, in the backward pass too; on an Intel Sapphire Rapids class CPU in about
72% (fp32) and on par in bf16, where oneDNN's AMX kernels are fast: :func:`swinseg.ops.conv3x3`
chooses by timing. Tiles are processed in bands of rows so that no transformed copy of the whole
input is ever held.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

__all__ = ["filter_transform", "filter_transform_adjoint", "winograd_conv3x3"]

# Filter transform G: the filter taps (g0, g1, g2) -> (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2).
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
_BAND_ELEMENTS = 2**21


def _transform_matrix(like: Tensor) -> Tensor:
    """(16, 9): the 3x3 taps of one filter -> its 4x4 transform ``G g G^T``, flattened."""
    G = like.new_tensor(_G)
    return torch.kron(G, G)


def filter_transform(weight: Tensor) -> Tensor:
    """(K, C, 3, 3) filters -> (16, K, C) transformed filters ``G g G^T``, one matrix per tile position."""
    K, C = weight.shape[:2]
    return (_transform_matrix(weight) @ weight.reshape(K * C, 9).T).view(16, K, C)


def filter_transform_adjoint(grad: Tensor) -> Tensor:
    """Gradient of :func:`filter_transform`: (16, K, C) -> (K, C, 3, 3)."""
    K, C = grad.shape[1:]
    return (grad.reshape(16, K * C).T @ _transform_matrix(grad)).view(K, C, 3, 3)


def _tile_transform(src: Tensor, tiles: int, out: Tensor) -> None:
    """``B^T d`` along dim 0: rows ``2i .. 2i + 3`` of ``src`` (at least ``2 * tiles + 2`` rows)
    -> ``(d0 - d2, d1 + d2, d2 - d1, d1 - d3)`` written to ``out[0..3]``, ``tiles`` rows each."""
    d = [src[k : k + 2 * tiles : 2] for k in range(4)]
    torch.sub(d[0], d[2], out=out[0])
    torch.add(d[1], d[2], out=out[1])
    torch.sub(d[2], d[1], out=out[2])
    torch.sub(d[1], d[3], out=out[3])


def _untile(m: Tensor, out0: Tensor, out1: Tensor) -> None:
    """``A^T m`` along dim 0: four transformed rows -> the two output rows ``m0 + m1 + m2`` and ``m1 - m2 - m3``."""
    torch.add(m[0] + m[1], m[2], out=out0)
    torch.sub(m[1] - m[2], m[3], out=out1)


def _untile_adjoint(g: Tensor, dim: int) -> list[Tensor]:
    """Gradient of :func:`_untile`: the two output rows along ``dim`` of ``g`` -> four transformed rows."""
    g0, g1 = g.unbind(dim)
    return [g0, g0 + g1, g0 - g1, -g1]


class _Bands:
    """The input transform ``B^T d B`` of a (B, C, H, W) map, one band of tile rows of one image at
    a time, as (16, C, tile_rows * tiles_per_row): entry ``4 * x + y`` is tile position (x, y). The
    zero padding of the convolution and the extra row / column of odd sizes are added per band."""

    def __init__(self, x: Tensor, out_channels: int) -> None:
        self.x = x
        B, C, H, W = x.shape
        self.tiles = rows, cols = (H + 1) // 2, (W + 1) // 2
        self.band = max(1, min(rows, _BAND_ELEMENTS // (16 * cols * max(C, out_channels))))
        self.padded = x.new_zeros(C, 2 * self.band + 2, 2 * cols + 2)  # columns outside 1..W stay zero
        self.rows = x.new_empty(4, C, self.band, 2 * cols + 2)
        self.tiled = x.new_empty(4, 4, C, self.band, cols)

    def __iter__(self) -> Iterator[tuple[int, int, int, Tensor]]:
        """Yields (image, first tile row, tile rows, transformed band)."""
        B, C, H, W = self.x.shape
        rows, cols = self.tiles
        for b in range(B):
            for top in range(0, rows, self.band):
                n = min(self.band, rows - top)
                first, last = 2 * top - 1, min(2 * (top + n) + 1, H)
                start = max(first, 0)
                self.padded[:, : start - first].zero_()
                self.padded[:, start - first : last - first, 1 : W + 1] = self.x[b, :, start:last]
                self.padded[:, last - first : 2 * n + 2].zero_()
                band_rows = self.rows[:, :, :n]
                _tile_transform(self.padded.transpose(0, 1), n, band_rows.transpose(1, 2))
                tiled = self.tiled[:, :, :, :n]
                for x in range(4):
                    _tile_transform(band_rows[x].permute(2, 0, 1), cols, tiled[x].permute(0, 3, 1, 2))
                yield b, top, n, tiled.reshape(16, C, n * cols)


def _convolve(x: Tensor, transformed: Tensor) -> Tensor:
    """(B, C, H, W) input and (16, K, C) transformed filters -> (B, K, H, W) output."""
    B, C, H, W = x.shape
    K = transformed.shape[1]
    bands = _Bands(x, K)
    rows, cols = bands.tiles
    out = x.new_empty(B, K, 2 * rows, 2 * cols)
    products = x.new_empty(16, K, bands.band * cols)
    half = x.new_empty(2, 4, K, bands.band, cols)
    for b, top, n, tiled in bands:
        m = torch.bmm(transformed, tiled, out=products[:, :, : n * cols]).view(4, 4, K, n, cols)
        _untile(m, half[0, :, :, :n], half[1, :, :, :n])
        block = out[b, :, 2 * top : 2 * (top + n)].view(K, n, 2, cols, 2)
        for i in range(2):
            _untile(half[i, :, :, :n], block[:, :, i, :, 0], block[:, :, i, :, 1])
    return out[:, :, :H, :W]


def _weight_grad(x: Tensor, grad: Tensor) -> Tensor:
    """Gradient of the transformed filters, (16, K, C), from the input and the output gradient."""
    C, K = x.shape[1], grad.shape[1]
    bands = _Bands(x, K)
    cols = bands.tiles[1]
    H, W = x.shape[-2:]
    padded = grad.new_zeros(K, 2 * bands.band, 2 * cols)  # columns from W on stay zero
    products = grad.new_empty(4, 4, K, bands.band, cols)
    total = grad.new_zeros(16, K, C)
    for b, top, n, tiled in bands:
        last = min(2 * (top + n), H)
        padded[:, : last - 2 * top, :W] = grad[b, :, 2 * top : last]
        padded[:, last - 2 * top : 2 * n].zero_()
        blocks = padded[:, : 2 * n].view(K, n, 2, cols, 2)
        for i, row in enumerate(_untile_adjoint(blocks, 2)):
            for j, value in enumerate(_untile_adjoint(row, 3)):
                products[i, j, :, :n] = value
        total.baddbmm_(products[:, :, :, :n].reshape(16, K, n * cols), tiled.transpose(1, 2))
    return total


class _WinogradConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return _convolve(x, filter_transform(weight))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = _convolve(grad, filter_transform(weight.transpose(0, 1).flip(2, 3)))
        if ctx.needs_input_grad[1]:
            grad_weight = filter_transform_adjoint(_weight_grad(x, grad))
        return grad_x, grad_weight


def winograd_conv3x3(x: Tensor, weight: Tensor) -> Tensor:
    """``F.conv2d(x, weight, padding=1)`` for (B, C, H, W) ``x`` and (K, C, 3, 3) ``weight`` by
    F(2x2, 3x3); differentiable in both. Under autocast both are cast to its dtype first."""
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight = x.to(dtype), weight.to(dtype)
    with torch.autocast(x.device.type, enabled=False):
        return _WinogradConv.apply(x, weight)
