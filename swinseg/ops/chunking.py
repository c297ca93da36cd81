"""How many tokens a Swin block works on at a time when it runs without gradients on a CPU:
``whole`` maps, or runs of whole windows (attention) and rows (MLP) of about 2048 or 8192 tokens,
whose intermediates stay in the caches. Chosen by :mod:`swinseg.ops.tuning` per width, dtype and
tokens per image (a power-of-two class: what decides whether a map fits in the caches; never the
batch, so that an image's kernels do not depend on it), by timing the block itself. Chunks slice
each image's rows and whole windows, never across images."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from .tuning import choose, register

__all__ = ["CHUNKS", "chunk_tokens"]

CHUNKS: dict[str, int | None] = {"whole": None, "2048": 2048, "8192": 8192}
register("chunk", tuple(CHUNKS))


def chunk_tokens(block: Callable[[int | None], Tensor], x: Tensor) -> int | None:
    """Tokens per chunk (None: whole maps) for a block on (B, H, W, C) ``x``; ``block(tokens)``
    runs the block that way (without side effects on ``x``)."""
    _, H, W, C = x.shape
    candidates = {name: (lambda tokens=tokens: block(tokens)) for name, tokens in CHUNKS.items()}
    return CHUNKS[choose("chunk", f"C{C}-tokens{1 << (H * W).bit_length()}", x.dtype, x.device, candidates, default="2048")]
