"""Decode heads of the MMSegmentation Swin configs: ``UPerHead`` and the auxiliary ``FCNHead``.

Module and parameter names are MMSegmentation's (``psp_modules.0.1.conv``, ``lateral_convs``,
``fpn_bottleneck``, ``conv_seg``...), so its checkpoints load without renaming.
Every head maps a list of NCHW backbone maps to (B, num_classes, H_0, W_0) logits at the
resolution of its first input level.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..configs.rules import HEAD_RULES, check_rules
from ..ops import conv3x3

__all__ = ["AdaptiveAvgPool", "ConvModule", "ReLU", "DecodeHead", "UPerHead", "FCNHead", "resize"]


def resize(x: Tensor, size: Sequence[int], align_corners: bool = False) -> Tensor:
    """Bilinear resize of an NCHW map to ``size`` (H, W); a no-op when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


def pooling_matrix(bins: int, size: int, like: Tensor) -> Tensor:
    """(bins, size) averaging weights of adaptive average pooling along one axis: bin ``i``
    averages ``[floor(i * size / bins), ceil((i + 1) * size / bins))``."""
    i = torch.arange(bins, device=like.device)
    start, end = (i * size) // bins, ((i + 1) * size + bins - 1) // bins
    j = torch.arange(size, device=like.device)
    inside = ((j >= start[:, None]) & (j < end[:, None])).to(like.dtype)
    return inside / inside.sum(1, keepdim=True)


class AdaptiveAvgPool(nn.Module):
    """``nn.AdaptiveAvgPool2d(bins)`` as two matrix products with the pooling weights of the
    input's size: (B, C, H, W) -> (B, C, bins, bins). Unlike PyTorch's operator, it exports to
    ONNX with dynamic height and width and compiles without a guard per size."""

    def __init__(self, bins: int) -> None:
        super().__init__()
        self.bins = bins

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        return pooling_matrix(self.bins, H, x) @ x @ pooling_matrix(self.bins, W, x).T

    def extra_repr(self) -> str:
        return f"bins={self.bins}"


class _ReLUKeepingMask(torch.autograd.Function):
    """ReLU whose backward keeps which inputs passed (one byte each) instead of its output (four
    bytes): the head's activations feed additions, resizes and concatenations, which keep
    nothing, so this is all that training holds of them. Gradients are ``torch.relu``'s, NaN
    inputs included."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        passed = ~(x <= 0)
        ctx.save_for_backward(passed)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (passed,) = ctx.saved_tensors
        return torch.where(passed, grad, 0.0)


class ReLU(nn.ReLU):
    """``nn.ReLU`` that, when a gradient is needed, saves only which inputs passed for the backward pass."""

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad and torch.is_grad_enabled():
            return _ReLUKeepingMask.apply(x)
        return super().forward(x)


class ConvModule(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU, named ``conv`` and ``bn`` as in mmcv; 3x3 kernels run
    through :func:`swinseg.ops.conv3x3` (the kernel chosen for the machine)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, inplace: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = ReLU(inplace=inplace)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def _conv(self, x: Tensor, weight: Tensor) -> Tensor:
        if self.conv.kernel_size == (3, 3):
            return conv3x3(x, weight)
        return F.conv2d(x, weight, padding=self.conv.padding)

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.bn(self._conv(x, self.conv.weight)))

    def forward_concat(self, parts: Iterable[Tensor]) -> Tensor:
        """``forward(torch.cat(parts, dim=1))``. When a gradient is needed, without the
        concatenation: the convolution as the sum of one per part (slices of the weight's input
        channels), taking the parts one at a time. Given a generator, each part is then made just
        before its convolution, and the backward pass takes each part's gradient back through
        what made it before making the next, instead of the concatenation's gradient all at
        once. Inference keeps the single convolution (faster)."""
        if not torch.is_grad_enabled():
            return self(torch.cat(list(parts), dim=1))
        out, start = None, 0
        for x in parts:
            y = self._conv(x, self.conv.weight[:, start : start + x.shape[1]])
            out, start = (y if out is None else out + y), start + x.shape[1]
        if out is None or start != self.conv.in_channels:
            raise ValueError(f"forward_concat: the parts have {start} channels in all, the convolution takes {self.conv.in_channels}")
        return self.activate(self.bn(out))


class DecodeHead(nn.Module):
    """What every head shares: input selection, Dropout2d and the 1x1 classifier ``conv_seg``.

    Args:
        in_channels: channels of the selected input(s); a list when several levels are used.
        in_index: backbone level(s) the head reads.
        channels: width of the head.
        num_classes: output classes.
        dropout_ratio: Dropout2d probability before ``conv_seg``.
        align_corners: ``align_corners`` of every bilinear resize.
        loss_weight: weight of this head's cross-entropy in the segmentor's loss.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        in_index: int | Sequence[int],
        channels: int,
        num_classes: int,
        dropout_ratio: float = 0.1,
        align_corners: bool = False,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        values = dict(
            in_channels=in_channels,
            in_index=in_index,
            channels=channels,
            num_classes=num_classes,
            dropout_ratio=dropout_ratio,
            loss_weight=loss_weight,
        )
        check_rules(values, HEAD_RULES, f"{type(self).__name__}: ")
        self.in_channels = in_channels
        self.in_index = in_index
        self.channels = channels
        self.num_classes = num_classes
        self.align_corners = align_corners
        self.loss_weight = loss_weight
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        nn.init.normal_(self.conv_seg.weight, std=0.01)
        nn.init.zeros_(self.conv_seg.bias)

    def cls_seg(self, feat: Tensor) -> Tensor:
        return self.conv_seg(self.dropout(feat))


class UPerHead(DecodeHead):
    """UPerNet: pyramid pooling on the last level, FPN top-down path, fused prediction at level 0.

    Input: list of (B, in_channels[i], H_i, W_i) maps (levels ``in_index``), output:
    (B, num_classes, H_0, W_0).
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (96, 192, 384, 768),
        in_index: Sequence[int] = (0, 1, 2, 3),
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        channels: int = 512,
        num_classes: int = 150,
        dropout_ratio: float = 0.1,
        align_corners: bool = False,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__(list(in_channels), list(in_index), channels, num_classes, dropout_ratio, align_corners, loss_weight)
        check_rules({"pool_scales": pool_scales}, HEAD_RULES, "UPerHead: ")
        if len(in_channels) != len(in_index):
            raise ValueError(f"UPerHead needs one in_channels entry per in_index, got {list(in_channels)} for {list(in_index)}")
        self.psp_modules = nn.ModuleList(
            nn.Sequential(AdaptiveAvgPool(scale), ConvModule(in_channels[-1], channels, 1)) for scale in pool_scales
        )
        self.bottleneck = ConvModule(in_channels[-1] + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1, inplace=False) for c in in_channels[:-1])
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3, inplace=False) for _ in in_channels[:-1])
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3)

    def psp_forward(self, x: Tensor) -> Tensor:
        pooled = [resize(psp(x), x.shape[-2:], self.align_corners) for psp in self.psp_modules]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        x = [inputs[i] for i in self.in_index]
        laterals = [conv(x[i]) for i, conv in enumerate(self.lateral_convs)]
        laterals.append(self.psp_forward(x[-1]))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[-2:], self.align_corners)
        outs = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals[:-1], strict=True)]
        outs.append(laterals[-1])
        size = outs[0].shape[-2:]
        fused = self.fpn_bottleneck.forward_concat(resize(o, size, self.align_corners) for o in outs)
        return self.cls_seg(fused)


class FCNHead(DecodeHead):
    """Fully convolutional head on one level: ``num_convs`` 3x3 conv-BN-ReLU units, optional concat
    of the input (``conv_cat``), classifier. Input: list of maps, output at level ``in_index``."""

    def __init__(
        self,
        in_channels: int = 384,
        in_index: int = 2,
        channels: int = 256,
        num_convs: int = 1,
        concat_input: bool = False,
        num_classes: int = 150,
        dropout_ratio: float = 0.1,
        align_corners: bool = False,
        loss_weight: float = 0.4,
    ) -> None:
        super().__init__(in_channels, in_index, channels, num_classes, dropout_ratio, align_corners, loss_weight)
        check_rules({"num_convs": num_convs}, HEAD_RULES, "FCNHead: ")
        if num_convs == 0 and in_channels != channels:
            raise ValueError(f"FCNHead with num_convs=0 needs in_channels == channels, got {in_channels} and {channels}")
        widths = [in_channels] + [channels] * num_convs
        self.convs = nn.Sequential(*(ConvModule(a, b, 3) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.conv_cat = ConvModule(in_channels + channels, channels, 3) if concat_input else None

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        x = inputs[self.in_index]
        feats = self.convs(x)
        if self.conv_cat is not None:
            feats = self.conv_cat(torch.cat([x, feats], dim=1))
        return self.cls_seg(feats)
