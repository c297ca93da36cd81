"""3x3 convolution kernels (stride 1, padding 1, no bias): ``direct`` (``F.conv2d``: oneDNN on a
CPU, cuDNN on a GPU), ``direct_nhwc`` (the same on a channels-last copy of the input, whose output
stays channels-last: oneDNN's bf16/AMX kernels prefer it) or ``winograd``
(:func:`~swinseg.ops.winograd.winograd_conv3x3`). The last two on a CPU only.
Chosen by :mod:`swinseg.ops.tuning` per channels, dtype and pixels per image (a power-of-two
class), never per batch, so that an image's result does not depend on its batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .tuning import choose, register
from .winograd import winograd_conv3x3

__all__ = ["KERNELS", "WINOGRAD_MIN_PIXELS", "conv3x3"]

KERNELS = ("winograd", "direct", "direct_nhwc")
register("conv3x3", KERNELS)

# With timing off: below this many output pixels per image, transforming the filters costs more
# than Winograd saves.
WINOGRAD_MIN_PIXELS = 2048


def _direct(x: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(x, weight, padding=1)


def _direct_nhwc(x: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, padding=1)


def conv3x3(x: Tensor, weight: Tensor) -> Tensor:
    """``F.conv2d(x, weight, padding=1)`` for (B, C, H, W) ``x`` and (K, C, 3, 3) ``weight``, by
    the chosen kernel (traced graphs keep the standard operator for export and compilation)."""
    if torch.compiler.is_compiling() or x.device.type != "cpu":
        return _direct(x, weight)
    H, W = x.shape[-2:]
    kernels = {"winograd": winograd_conv3x3, "direct": _direct, "direct_nhwc": _direct_nhwc}
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    shape = f"C{x.shape[1]}-K{weight.shape[0]}-px{1 << (H * W).bit_length()}" + ("-grad" if grad else "")
    candidates = {name: (lambda fn=fn: fn(x, weight)) for name, fn in kernels.items()}
    default = "winograd" if H * W >= WINOGRAD_MIN_PIXELS else "direct"
    return kernels[choose("conv3x3", shape, x.dtype, x.device, candidates, default, timeable=not grad)](x, weight)
