"""The constructors of the ``swin-transformer-pytorch`` package, returning our model.

``swin_t(hidden_dim=96, layers=(2, 2, 6, 2), heads=(3, 6, 12, 24), channels=3, num_classes=3,
head_dim=32, window_size=7, downscaling_factors=(4, 2, 2, 2), relative_pos_embedding=True)``
and its siblings map their arguments onto :class:`SwinTransformer`. The real architecture ties
the head width to ``stage width / heads`` and always learns a relative position bias, so
arguments that contradict it are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..configs.defaults import SWIN_SIZES
from .swin import SwinTransformer

__all__ = ["swin_t", "swin_s", "swin_b", "swin_l"]


def _build(
    hidden_dim: int,
    layers: Sequence[int],
    heads: Sequence[int],
    channels: int = 3,
    num_classes: int = 1000,
    head_dim: int = 32,
    window_size: int = 7,
    downscaling_factors: Sequence[int] = (4, 2, 2, 2),
    relative_pos_embedding: bool = True,
    **kwargs: Any,
) -> SwinTransformer:
    if not relative_pos_embedding:
        raise ValueError(
            "relative_pos_embedding=False is not the Swin architecture: every Swin block learns a relative "
            "position bias, and pretrained checkpoints carry one"
        )
    if len(layers) != len(heads) or len(layers) != len(downscaling_factors):
        raise ValueError(
            f"layers, heads and downscaling_factors need one entry per stage, got {len(layers)}, "
            f"{len(heads)} and {len(downscaling_factors)}"
        )
    widths = [hidden_dim * 2**i for i in range(len(layers))]
    implied = [w // h if w % h == 0 else w / h for w, h in zip(widths, heads, strict=True)]
    if any(d != head_dim for d in implied):
        raise ValueError(
            f"head_dim={head_dim} does not fit: with hidden_dim={hidden_dim} and heads={tuple(heads)} the stage "
            f"widths {widths} give heads of width {implied}; Swin's attention splits each stage's width evenly "
            f"across its heads, so pass head_dim equal to hidden_dim / heads[0] with heads doubling per stage"
        )
    if any(f != 2 for f in downscaling_factors[1:]):
        raise ValueError(
            f"downscaling_factors={tuple(downscaling_factors)}: Swin's patch merging halves the map, so every "
            f"factor after the first must be 2"
        )
    return SwinTransformer(
        in_channels=channels,
        embed_dims=hidden_dim,
        patch_size=downscaling_factors[0],
        strides=list(downscaling_factors),
        window_size=window_size,
        depths=list(layers),
        num_heads=list(heads),
        num_classes=num_classes,
        **kwargs,
    )


def _sized(
    size: str, hidden_dim: int | None, layers: Sequence[int] | None, heads: Sequence[int] | None, kwargs: dict[str, Any]
) -> SwinTransformer:
    """``_build`` with the paper's width, depths and heads of ``size`` where not given."""
    paper = SWIN_SIZES[size]
    return _build(hidden_dim or paper["embed_dims"], layers or paper["depths"], heads or paper["num_heads"], **kwargs)


def swin_t(
    hidden_dim: int | None = None, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None, **kwargs: Any
) -> SwinTransformer:
    """Swin-T: 96 channels, depths (2, 2, 6, 2), heads (3, 6, 12, 24) unless given."""
    return _sized("tiny", hidden_dim, layers, heads, kwargs)


def swin_s(
    hidden_dim: int | None = None, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None, **kwargs: Any
) -> SwinTransformer:
    """Swin-S: 96 channels, depths (2, 2, 18, 2), heads (3, 6, 12, 24) unless given."""
    return _sized("small", hidden_dim, layers, heads, kwargs)


def swin_b(
    hidden_dim: int | None = None, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None, **kwargs: Any
) -> SwinTransformer:
    """Swin-B: 128 channels, depths (2, 2, 18, 2), heads (4, 8, 16, 32) unless given."""
    return _sized("base", hidden_dim, layers, heads, kwargs)


def swin_l(
    hidden_dim: int | None = None, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None, **kwargs: Any
) -> SwinTransformer:
    """Swin-L: 192 channels, depths (2, 2, 18, 2), heads (6, 12, 24, 48) unless given."""
    return _sized("large", hidden_dim, layers, heads, kwargs)
