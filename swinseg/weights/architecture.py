"""A checkpoint's architecture: from the native metadata, else read off the shapes of its weights."""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from .formats import is_segmentor, split_segmentor
from .load import NATIVE_FORMAT
from .preprocessing import preprocessing_from_meta

__all__ = ["checkpoint_config", "infer_config", "infer_segmentor_config"]

StateDict = dict[str, Tensor]


def infer_config(sd: StateDict) -> dict[str, Any]:
    """SwinTransformer arguments read off the shapes of a native state dict."""
    if "patch_embed.proj.weight" not in sd:
        raise KeyError("cannot infer the architecture: no patch_embed.proj.weight in the checkpoint")
    embed_dims, in_channels, patch_size, _ = sd["patch_embed.proj.weight"].shape
    depths: dict[int, int] = {}
    for key in sd:
        m = re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.", key)
        if m:
            stage, block = int(m.group(1)), int(m.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    stages = range(len(depths))
    tables = [sd[f"stages.{i}.blocks.0.attn.relative_position_bias_table"] for i in stages]
    config: dict[str, Any] = dict(
        in_channels=in_channels,
        embed_dims=embed_dims,
        patch_size=patch_size,
        window_size=(int(round(tables[0].shape[0] ** 0.5)) + 1) // 2,
        mlp_ratio=sd["stages.0.blocks.0.mlp.fc1.weight"].shape[0] / embed_dims,
        depths=[depths[i] for i in stages],
        num_heads=[t.shape[1] for t in tables],
        strides=[patch_size] + [2] * (len(depths) - 1),
        qkv_bias="stages.0.blocks.0.attn.qkv.bias" in sd,
        patch_norm="patch_embed.norm.weight" in sd,
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
    )
    if "absolute_pos_embed" in sd:
        side = int(round(sd["absolute_pos_embed"].shape[1] ** 0.5))
        config.update(use_abs_pos_embed=True, pretrain_img_size=side * patch_size)
    norms = sorted(int(m.group(1)) for k in sd if (m := re.match(r"^norm(\d+)\.weight$", k)))
    if norms:
        config["out_indices"] = norms
    return config


def infer_segmentor_config(sd: StateDict) -> dict[str, Any]:
    """:class:`~swinseg.models.segmentor.EncoderDecoder` arguments read off a native segmentor
    state dict (UPerHead pool scales are taken as (1, 2, 3, 6), the only ones in use)."""
    backbone, heads = split_segmentor(sd)
    if "decode_head.conv_seg.weight" not in heads:
        raise KeyError("cannot infer the segmentor: no decode_head.conv_seg.weight in the checkpoint")

    def count(pattern: str) -> int:
        return len({m.group(1) for k in heads if (m := re.match(pattern, k))})

    if count(r"^decode_head\.psp_modules\.(\d+)\.") != 4:
        raise ValueError("cannot infer UPerHead pool_scales from the checkpoint; build the model by name and load into it")
    num_classes, channels = heads["decode_head.conv_seg.weight"].shape[:2]
    levels = count(r"^decode_head\.lateral_convs\.(\d+)\.") + 1
    config: dict[str, Any] = {
        "backbone": infer_config(backbone),
        "decode_head": dict(in_index=list(range(levels)), pool_scales=[1, 2, 3, 6], channels=channels, num_classes=num_classes),
        "auxiliary_head": None,
    }
    if "auxiliary_head.conv_seg.weight" in heads:
        widths = [config["backbone"]["embed_dims"] * 2**i for i in range(len(config["backbone"]["depths"]))]
        num_convs = count(r"^auxiliary_head\.convs\.(\d+)\.")
        aux_in = heads["auxiliary_head.convs.0.conv.weight"].shape[1] if num_convs else heads["auxiliary_head.conv_seg.weight"].shape[1]
        config["auxiliary_head"] = dict(
            in_index=widths.index(aux_in) if aux_in in widths else 2,
            channels=heads["auxiliary_head.conv_seg.weight"].shape[1],
            num_convs=num_convs,
            concat_input="auxiliary_head.conv_cat.conv.weight" in heads,
            num_classes=heads["auxiliary_head.conv_seg.weight"].shape[0],
        )
    return config


def checkpoint_config(sd: StateDict, meta: dict[str, Any]) -> dict[str, Any]:
    """The config of a native state dict: from our metadata, else the architecture read off the
    shapes and the test settings the file's layout carries (:mod:`.preprocessing`)."""
    if meta.get("format") == NATIVE_FORMAT and isinstance(meta.get("config"), dict):
        return meta["config"]
    if not is_segmentor(sd):
        return infer_config(sd)
    return infer_segmentor_config(sd) | preprocessing_from_meta(meta)  # the test settings the layout carries
