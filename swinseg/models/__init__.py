"""Models: the Swin Transformer, UPerNet heads and segmentor, the seed package's constructors and
the registry of named models."""

from .compat import swin_b, swin_l, swin_s, swin_t
from .factory import Source, build_segmentor, create_model, resolve, resolve_config, validated_config
from .heads import FCNHead, UPerHead
from .segmentor import EncoderDecoder
from .swin import SwinTransformer
from .zoo import ModelSpec, get_spec, list_models, register

__all__ = [
    "EncoderDecoder",
    "FCNHead",
    "ModelSpec",
    "Source",
    "SwinTransformer",
    "UPerHead",
    "build_segmentor",
    "create_model",
    "get_spec",
    "list_models",
    "register",
    "resolve",
    "resolve_config",
    "swin_b",
    "swin_l",
    "swin_s",
    "swin_t",
    "validated_config",
]
