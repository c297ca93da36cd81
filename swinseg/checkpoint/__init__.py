"""Checkpoints: reading and writing safely, layouts of other implementations, downloads."""

from .formats import FORMATS, detect_format, from_native, to_native
from .hub import cache_dir, download
from .loading import LoadReport, convert_checkpoint, infer_config, load_checkpoint, read_native, save_checkpoint

__all__ = [
    "FORMATS",
    "LoadReport",
    "cache_dir",
    "convert_checkpoint",
    "detect_format",
    "download",
    "from_native",
    "infer_config",
    "load_checkpoint",
    "read_native",
    "save_checkpoint",
    "to_native",
]
