"""Class names and palettes: ADE20K (SceneParsing, 150 classes) as MMSegmentation has them, and
generic ones for other class counts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ade20k_classes", "ade20k_palette", "default_dataset_meta"]


@lru_cache(maxsize=1)
def _ade20k() -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
    rows = [line.split("\t") for line in Path(__file__).with_name("ade20k.txt").read_text().splitlines()]
    return tuple(name for name, _ in rows), tuple(tuple(int(v) for v in rgb.split()) for _, rgb in rows)


def ade20k_classes() -> tuple[str, ...]:
    """The 150 class names in label order (after ``reduce_zero_label``)."""
    return _ade20k()[0]


def ade20k_palette() -> tuple[tuple[int, int, int], ...]:
    """One RGB colour per ADE20K class."""
    return _ade20k()[1]


def default_dataset_meta(num_classes: int) -> dict[str, Any]:
    """``{'classes', 'palette'}`` for a model without its own: ADE20K's for 150 classes, otherwise
    ``class {i}`` and a fixed pseudo-random palette."""
    if num_classes == len(ade20k_classes()):
        return {"classes": list(ade20k_classes()), "palette": [list(c) for c in ade20k_palette()]}
    rng = np.random.default_rng(42)
    palette = rng.integers(0, 256, size=(num_classes, 3)).tolist()
    return {"classes": [f"class {i}" for i in range(num_classes)], "palette": palette}
