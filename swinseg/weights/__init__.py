"""Weights: the layouts of the Swin implementations in the field and conversion between them,
safe reading and atomic writing of files, downloads checked by hash. (Training state lives in
:mod:`swinseg.engine.checkpoints`; activation recomputation is the backbone's ``with_cp``.)"""

from .architecture import checkpoint_config, infer_config, infer_segmentor_config
from .convert import convert_checkpoint, hf_upernet_config, publish_checkpoint
from .formats import FORMATS, detect_format, from_native, is_segmentor, to_native
from .hub import cache_dir, download, is_url
from .load import LoadReport, load_checkpoint, load_native, native_meta, read_dataset_meta, read_native, save_checkpoint

__all__ = [
    "FORMATS",
    "LoadReport",
    "cache_dir",
    "checkpoint_config",
    "convert_checkpoint",
    "detect_format",
    "download",
    "from_native",
    "hf_upernet_config",
    "infer_config",
    "infer_segmentor_config",
    "is_segmentor",
    "is_url",
    "load_checkpoint",
    "load_native",
    "native_meta",
    "publish_checkpoint",
    "read_dataset_meta",
    "read_native",
    "save_checkpoint",
    "to_native",
]
