"""Checkpoints: reading and writing safely, layouts of other implementations, downloads."""

from .formats import FORMATS, detect_format, from_native, is_segmentor, to_native
from .hub import cache_dir, download
from .loading import (
    LoadReport,
    checkpoint_config,
    convert_checkpoint,
    infer_config,
    infer_segmentor_config,
    load_checkpoint,
    read_dataset_meta,
    read_native,
    save_checkpoint,
)

__all__ = [
    "FORMATS",
    "LoadReport",
    "cache_dir",
    "checkpoint_config",
    "convert_checkpoint",
    "detect_format",
    "download",
    "from_native",
    "infer_config",
    "infer_segmentor_config",
    "is_segmentor",
    "load_checkpoint",
    "read_dataset_meta",
    "read_native",
    "save_checkpoint",
    "to_native",
]
