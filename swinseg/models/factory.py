"""``create_model``: build a named model or a checkpoint's architecture, optionally with weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..weights import checkpoint_config, load_checkpoint, read_native
from ..weights.hub import is_url
from ..ops import parse_dtype
from .segmentor import EncoderDecoder
from .swin import SwinTransformer
from .zoo import full_config, get_spec, merge_config

__all__ = ["create_model"]


def create_model(
    name: str | os.PathLike, pretrained: bool | str | os.PathLike = False, dtype: str | torch.dtype | None = None, **overrides: Any
) -> nn.Module:
    """Build a registered model by ``name``, or the architecture stored in a checkpoint file.

    ``pretrained``: False (random init), True (the registered weights, downloaded and
    hash-checked), or a path/URL of a checkpoint in any supported layout. ``dtype``: ``"bf16"``
    or ``"fp16"`` casts the weights for inference (:mod:`swinseg.ops.precision`). ``overrides``
    are merged into the config (nested dicts merge recursively, e.g.
    ``decode_head=dict(num_classes=19)``); an unknown key is an error naming it.
    """
    model = _build(name, pretrained, overrides)
    return model.to(parse_dtype(dtype)) if dtype is not None else model


def _build(name: str | os.PathLike, pretrained: bool | str | os.PathLike, overrides: dict[str, Any]) -> nn.Module:
    if not is_url(name) and Path(name).exists():
        sd, meta, _ = read_native(name)
        config = checkpoint_config(sd, meta)
        builder = EncoderDecoder if "backbone" in config else SwinTransformer
        model = builder(**merge_config(full_config(builder, **config), overrides))
        load_checkpoint(model, name)
        return model
    spec = get_spec(str(name))
    model = spec.builder(**merge_config(spec.config, overrides))
    if pretrained is True:
        if spec.url is None:
            raise ValueError(f"model {spec.name!r} has no published weights")
        load_checkpoint(model, spec.url, sha256=spec.sha256)
    elif pretrained:
        load_checkpoint(model, pretrained)
    return model
