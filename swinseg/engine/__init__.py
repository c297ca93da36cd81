"""Training and evaluation machinery: distributed helpers."""

from .distributed import get_world_size, sync_batchnorm

__all__ = ["get_world_size", "sync_batchnorm"]
