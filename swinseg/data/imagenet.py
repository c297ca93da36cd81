"""ImageNet class names."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["imagenet_classes"]


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1K class names in label order."""
    return tuple((Path(__file__).with_name("imagenet_classes.txt")).read_text().splitlines())
