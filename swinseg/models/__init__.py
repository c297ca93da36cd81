"""Models: the Swin Transformer, the seed package's constructors and the registry of named models."""

from .compat import swin_b, swin_l, swin_s, swin_t
from .swin import SwinTransformer
from .zoo import ModelSpec, get_spec, list_models, register

__all__ = ["ModelSpec", "SwinTransformer", "get_spec", "list_models", "register", "swin_b", "swin_l", "swin_s", "swin_t"]
