"""Training and evaluation machinery: distributed helpers, metrics."""

from .distributed import get_world_size, sync_batchnorm
from .metrics import IoUMetric, intersect_and_union

__all__ = ["IoUMetric", "get_world_size", "intersect_and_union", "sync_batchnorm"]
