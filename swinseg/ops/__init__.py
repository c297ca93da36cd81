"""How the model's operations run, in one place: window attention (and its softmax dtype), linear
layers (with GELU fused or not), the heads' 3x3 convolutions, the Swin block (windows by gathers,
chunks, recomputation). Each operation (:class:`~swinseg.ops.dispatch.Operation`) declares its
kernels, which compute the same thing to round-off, and where each may run;
:mod:`~swinseg.ops.tuning` picks one per device, machine, dtype and shape class, by timing them
on first use (kept per machine), and records what it picked.

>>> from swinseg import ops
>>> ops.configure(attention="bmm")        # force a kernel (or SWINSEG_KERNELS=attention=bmm)
>>> ops.configure(tune=False)             # no timing: the static defaults (SWINSEG_KERNELS=tune=off)
>>> ops.choices()                          # {"attention/cpu/float32/N49-d32-h3-w64": "sdpa", ...}
>>> print(ops.explain())                   # which kernel runs when (README, "Speed")
"""

from .attention import window_attention
from .blocks import swin_block
from .conv import conv3x3
from .dispatch import explain
from .linear import linear
from .machine import cpu_info, machine_info, signature
from .precision import DTYPES, dtype_name, parse_dtype
from .tuning import ENV, choices, configure, forced, restore
from .windows import padded, relative_position_index, shift_window_mask

__all__ = [
    "DTYPES",
    "ENV",
    "choices",
    "configure",
    "conv3x3",
    "cpu_info",
    "dtype_name",
    "explain",
    "forced",
    "linear",
    "machine_info",
    "padded",
    "parse_dtype",
    "relative_position_index",
    "restore",
    "shift_window_mask",
    "signature",
    "swin_block",
    "window_attention",
]
