"""Load any supported checkpoint into a :class:`~swinseg.models.swin.SwinTransformer`."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .formats import detect_format, from_native, is_segmentor, split_segmentor, to_native
from .hub import download, is_url
from .io import read_checkpoint, unwrap_state_dict, write_file

__all__ = [
    "LoadReport",
    "load_checkpoint",
    "read_native",
    "save_checkpoint",
    "infer_config",
    "infer_segmentor_config",
    "checkpoint_config",
    "read_dataset_meta",
    "convert_checkpoint",
]

StateDict = dict[str, Tensor]
NATIVE_FORMAT = "swinseg"
_CLASSIFIER_KEYS = re.compile(r"^(head|norm)\.")
_STAGE_NORM = re.compile(r"^norm\d+\.")


@dataclass
class LoadReport:
    """What happened to each key when a checkpoint was loaded."""

    source: str
    format: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    expected_missing: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {self.source} ({self.format} layout)"]
        for name in ("missing", "unexpected", "dropped", "resized", "expected_missing"):
            keys = getattr(self, name)
            if keys:
                shown = ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")
                lines.append(f"  {name.replace('_', ' ')}: {shown}")
        return "\n".join(lines)


def resolve_source(source: str | os.PathLike, sha256: str | None = None) -> Path:
    """A local path for ``source``: the path itself, or the cached download of a URL."""
    if is_url(source):
        return download(str(source), sha256=sha256)
    return Path(source)


def read_native(source: str | os.PathLike, sha256: str | None = None) -> tuple[StateDict, dict[str, Any], str]:
    """Read a checkpoint of any supported layout; return ``(native_state_dict, meta, format)``.

    A segmentor checkpoint keeps its ``backbone.``/``decode_head.``/``auxiliary_head.`` keys.
    """
    obj, meta = read_checkpoint(resolve_source(source, sha256))
    sd = unwrap_state_dict(obj)
    fmt = "native" if meta.get("format") == NATIVE_FORMAT else detect_format(sd)
    return to_native(sd, fmt), meta, fmt


def read_dataset_meta(meta: dict[str, Any]) -> dict[str, Any] | None:
    """``{'classes', 'palette'}`` from a checkpoint's metadata: MMSegmentation 1.x
    ``dataset_meta``, 0.x ``CLASSES``/``PALETTE``, or an HF ``config.json``'s ``id2label``."""
    if isinstance(meta.get("dataset_meta"), dict) and meta["dataset_meta"].get("classes"):
        classes, palette = meta["dataset_meta"]["classes"], meta["dataset_meta"].get("palette")
    elif meta.get("CLASSES"):
        classes, palette = meta["CLASSES"], meta.get("PALETTE")
    elif isinstance(meta.get("hf_config"), dict) and meta["hf_config"].get("id2label"):
        id2label = meta["hf_config"]["id2label"]
        classes, palette = [id2label[k] for k in sorted(id2label, key=int)], None
    else:
        return None
    out: dict[str, Any] = {"classes": [str(c) for c in classes]}
    try:
        out["palette"] = [[int(v) for v in colour][:3] for colour in palette]
    except (TypeError, ValueError):
        pass  # no palette, or one pickled as an object we do not unpickle: a default one is used
    return out


def _resize_bias_table(table: Tensor, length: int) -> Tensor:
    """Bicubic resize of a ((2M-1)^2, heads) table to (length, heads), as MMSegmentation and the official code do."""
    old, heads = table.shape
    s1, s2 = int(round(old**0.5)), int(round(length**0.5))
    grid = table.float().t().reshape(1, heads, s1, s1)
    return F.interpolate(grid, size=(s2, s2), mode="bicubic").reshape(heads, length).t().contiguous().to(table.dtype)


def _resize_pos_embed(pos: Tensor, grid: tuple[int, int]) -> Tensor:
    _, length, dims = pos.shape
    side = int(round(length**0.5))
    x = pos.float().reshape(1, side, side, dims).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=grid, mode="bicubic", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], dims).to(pos.dtype)


def _fit_backbone(backbone: nn.Module, sd: StateDict, report: LoadReport) -> StateDict:
    """Drop what a backbone does not have, resize tables and embeddings, and check shapes."""
    if getattr(backbone, "num_classes", 0) == 0:
        report.dropped = sorted(k for k in sd if _CLASSIFIER_KEYS.match(k))
        sd = {k: v for k, v in sd.items() if not _CLASSIFIER_KEYS.match(k)}
    own = backbone.state_dict()
    for key, value in sd.items():
        if key not in own or own[key].shape == value.shape:
            continue
        target = own[key].shape
        if key.endswith("relative_position_bias_table") and value.shape[1] == target[1]:
            sd[key] = _resize_bias_table(value, target[0])
            report.resized.append(key)
        elif key == "absolute_pos_embed" and value.shape[2] == target[2]:
            sd[key] = _resize_pos_embed(value, backbone.pos_grid)
            report.resized.append(key)
    return sd


def _is_segmentor_model(model: nn.Module) -> bool:
    return hasattr(model, "decode_head") and hasattr(model, "backbone")


def load_checkpoint(
    model: nn.Module, source: str | os.PathLike, strict: bool = True, sha256: str | None = None
) -> LoadReport:
    """Load a checkpoint of any supported layout (path, directory or URL) into ``model``.

    ``model`` is a Swin backbone or classifier, or a segmentor. A segmentor takes a segmentor
    checkpoint whole (MMSegmentation 0.x/1.x, the official segmentation repo, HF UperNet,
    native; class names and palette too), or a backbone checkpoint into its backbone (the
    heads keep their initialization). A backbone takes the backbone of a segmentor checkpoint.

    Official ImageNet checkpoints go into a backbone as MMSegmentation loads them: the head and
    final norm are dropped and the output norms ``norm{i}`` keep their initial values. Bias
    tables and absolute position embeddings are resized bicubically when the window or grid
    differs. What a checkpoint may lack by design (output norms, heads, the loss-only auxiliary
    head) is reported as ``expected_missing``; with ``strict``, any other missing or unexpected
    key, and any shape mismatch, is an error naming the keys.
    """
    sd, meta, fmt = read_native(source, sha256)
    report = LoadReport(source=str(source), format=fmt)
    if _is_segmentor_model(model):
        backbone, heads = split_segmentor(sd) if is_segmentor(sd) else (sd, {})
        backbone = _fit_backbone(model.backbone, backbone, report)
        sd = {f"backbone.{k}": v for k, v in backbone.items()} | heads
        prefix = "backbone."
        report.dropped = [prefix + k for k in report.dropped]
        report.resized = [prefix + k for k in report.resized]
        optional = [re.compile(r"^backbone\.norm\d+\."), re.compile(r"^decode_head\."), re.compile(r"^auxiliary_head\.")]
        dataset_meta = read_dataset_meta(meta)
    else:
        sd = _fit_backbone(model, split_segmentor(sd)[0] if is_segmentor(sd) else sd, report)
        optional, dataset_meta = [_STAGE_NORM], None
    own = model.state_dict()
    mismatched = [
        f"  {k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in sd.items() if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(f"{source}: shapes differ from the model's:\n" + "\n".join(mismatched))
    missing = sorted(set(own) - set(sd))
    for pattern in optional:
        if not any(pattern.match(k) for k in sd):
            report.expected_missing += [k for k in missing if pattern.match(k)]
    report.missing = [k for k in missing if k not in report.expected_missing]
    report.unexpected = sorted(set(sd) - set(own))
    if strict and (report.missing or report.unexpected):
        raise KeyError(
            f"{source} does not fit the model (strict=True):\n"
            f"  missing: {', '.join(report.missing) or '-'}\n  unexpected: {', '.join(report.unexpected) or '-'}"
        )
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    if dataset_meta is not None:
        model.dataset_meta = _complete_dataset_meta(dataset_meta, model.num_classes, source)
    return report


def _complete_dataset_meta(dataset_meta: dict[str, Any], num_classes: int, source: str | os.PathLike) -> dict[str, Any]:
    from ..data.classes import default_dataset_meta

    if len(dataset_meta["classes"]) != num_classes:
        raise ValueError(f"{source} names {len(dataset_meta['classes'])} classes but its head predicts {num_classes}")
    if "palette" not in dataset_meta or len(dataset_meta["palette"]) != num_classes:
        dataset_meta = {**dataset_meta, "palette": default_dataset_meta(num_classes)["palette"]}
    return dataset_meta


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
    """The architecture of a native state dict: from our metadata, else read off the shapes."""
    if meta.get("format") == NATIVE_FORMAT and isinstance(meta.get("config"), dict):
        return meta["config"]
    return infer_segmentor_config(sd) if is_segmentor(sd) else infer_config(sd)


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights in the native layout with its config (and a segmentor's class
    names and palette) as ``.safetensors`` or ``.pth``."""
    meta: dict[str, Any] = {"format": NATIVE_FORMAT, "config": model.config}
    if getattr(model, "dataset_meta", None):
        meta["dataset_meta"] = model.dataset_meta
    return write_file({"state_dict": model.state_dict(), "meta": meta}, path)


def hf_upernet_config(config: dict[str, Any], dataset_meta: dict[str, Any] | None) -> dict[str, Any]:
    """``config.json`` of an HF ``UperNetForSemanticSegmentation`` with a Swin backbone."""
    bb, head, aux = config["backbone"], config["decode_head"], config.get("auxiliary_head")
    widths = [bb["embed_dims"] * 2**i for i in range(len(bb["depths"]))]
    size = bb.get("pretrain_img_size", 224)
    classes = (dataset_meta or {}).get("classes") or [f"class {i}" for i in range(head["num_classes"])]
    out = {
        "architectures": ["UperNetForSemanticSegmentation"],
        "model_type": "upernet",
        "backbone_config": {
            "model_type": "swin",
            "image_size": size if isinstance(size, int) else list(size),
            "patch_size": bb.get("patch_size", 4),
            "num_channels": bb.get("in_channels", 3),
            "embed_dim": bb["embed_dims"],
            "depths": list(bb["depths"]),
            "num_heads": list(bb["num_heads"]),
            "window_size": bb["window_size"],
            "mlp_ratio": bb.get("mlp_ratio", 4.0),
            "qkv_bias": bb.get("qkv_bias", True),
            "drop_path_rate": bb.get("drop_path_rate", 0.1),
            "use_absolute_embeddings": bb.get("use_abs_pos_embed", False),
            "out_features": [f"stage{i + 1}" for i in range(len(widths))],
        },
        "hidden_size": head["channels"],
        "pool_scales": list(head.get("pool_scales", [1, 2, 3, 6])),
        "use_auxiliary_head": aux is not None,
        "id2label": {str(i): name for i, name in enumerate(classes)},
        "label2id": {name: i for i, name in enumerate(classes)},
        "loss_ignore_index": config.get("ignore_index", 255),
    }
    if aux is not None:
        out.update(
            auxiliary_in_channels=widths[aux.get("in_index", 2)],
            auxiliary_channels=aux["channels"],
            auxiliary_num_convs=aux.get("num_convs", 1),
            auxiliary_concat_input=aux.get("concat_input", False),
            auxiliary_loss_weight=aux.get("loss_weight", 0.4),
        )
    return out


def convert_checkpoint(source: str | os.PathLike, dest: str | os.PathLike, to: str = "native") -> tuple[str, Path]:
    """Convert a checkpoint between layouts; returns ``(source_format, dest_path)``.

    For one Swin: ``native`` writes safetensors or ``.pth`` with the architecture in the
    metadata; ``mmseg`` writes what MMSegmentation's ``swin2mmseg.py`` writes (a flat ``.pth``,
    no classifier head); ``official`` writes ``{'model': ...}``; ``timm`` and ``hf`` write
    their layouts as ``.pth`` or ``.safetensors``.

    For a segmentor: ``native`` as above with class names and palette; ``mmseg`` and
    ``official`` write ``{'state_dict', 'meta'}`` as MMSegmentation 1.x and the official
    segmentation repo (MMSegmentation 0.x) save them; ``hf`` with a destination without a
    suffix writes an HF ``UperNetForSemanticSegmentation`` directory (``config.json`` +
    ``model.safetensors``), loadable with ``from_pretrained``.
    """
    sd, meta, fmt = read_native(source)
    dest = Path(dest)
    segmentor = is_segmentor(sd)
    dataset_meta = read_dataset_meta(meta)
    if to == "native":
        out_meta: dict[str, Any] = {"format": NATIVE_FORMAT, "config": checkpoint_config(sd, meta)}
        if dataset_meta:
            out_meta["dataset_meta"] = dataset_meta
        return fmt, write_file({"state_dict": sd, "meta": out_meta}, dest)
    out = from_native(sd, to)
    if segmentor and to == "hf" and not dest.suffix:
        dest.mkdir(parents=True, exist_ok=True)
        config = hf_upernet_config(checkpoint_config(sd, meta), dataset_meta)
        write_file(out, dest / "model.safetensors")
        (dest / "config.json").write_text(json.dumps(config, indent=2))
        return fmt, dest
    if segmentor and to in ("mmseg", "official") and dest.suffix != ".safetensors":
        legacy = {"CLASSES": tuple(dataset_meta["classes"]), "PALETTE": dataset_meta.get("palette")} if dataset_meta else {}
        new = {"dataset_meta": dataset_meta} if dataset_meta else {}
        return fmt, write_file({"state_dict": out, "meta": new if to == "mmseg" else legacy}, dest)
    return fmt, write_file({"model": out} if to == "official" and dest.suffix != ".safetensors" else out, dest)
