"""Loading weights of any supported layout into a model, and saving them in the native one."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .formats import detect_format, is_segmentor, split_segmentor, to_native
from .hub import download, is_url
from .io import read_checkpoint, unwrap_state_dict, write_file

__all__ = [
    "LoadReport",
    "NATIVE_FORMAT",
    "load_checkpoint",
    "load_native",
    "native_meta",
    "read_dataset_meta",
    "read_native",
    "save_checkpoint",
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


def load_checkpoint(model: nn.Module, source: str | os.PathLike, *, strict: bool = True, sha256: str | None = None) -> LoadReport:
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
    return load_native(model, *read_native(source, sha256), source=source, strict=strict)


def load_native(
    model: nn.Module, sd: StateDict, meta: dict[str, Any], fmt: str, source: str | os.PathLike, strict: bool = True
) -> LoadReport:
    """:func:`load_checkpoint` of what :func:`read_native` read from ``source`` (so that a file
    read once for its architecture is not read, and hash-checked, a second time)."""
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
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in sd.items() if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(f"{source} is another architecture than the model's: {_difference(sd, own, mismatched)}")
    missing = sorted(set(own) - set(sd))
    for pattern in optional:
        if not any(pattern.match(k) for k in sd):
            report.expected_missing += [k for k in missing if pattern.match(k)]
    report.missing = [k for k in missing if k not in report.expected_missing]
    report.unexpected = sorted(set(sd) - set(own))
    if strict and (report.missing or report.unexpected):
        raise KeyError(
            f"{source} does not fit the model (strict=True); "
            f"missing: {', '.join(report.missing) or '-'}; unexpected: {', '.join(report.unexpected) or '-'}"
        )
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    if dataset_meta is not None:
        model.dataset_meta = _complete_dataset_meta(dataset_meta, model.num_classes, source)
    return report


_BLOCK = re.compile(r"(?:^|\.)stages\.(\d+)\.blocks\.(\d+)\.")


def _shape_summary(sd: dict[str, Any]) -> dict[str, Any]:
    """Embedding width, blocks per stage and classes of a (native) state dict, where it shows them."""
    out: dict[str, Any] = {}
    for key, value in sd.items():
        if key.endswith("patch_embed.proj.weight"):
            out["embed_dims"] = value.shape[0]
        elif key.endswith("decode_head.conv_seg.weight") or key == "head.weight":
            out["classes"] = value.shape[0]
    blocks: dict[int, set[int]] = {}
    for key in sd:
        if m := _BLOCK.search(key):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if blocks:
        out["depths"] = tuple(len(blocks[i]) for i in sorted(blocks))
    return out


def _difference(sd: dict[str, Any], own: dict[str, Any], mismatched: list[str]) -> str:
    """A short account of how a checkpoint's architecture differs from the model's: the widths,
    depths and classes that differ, then the first few mismatched tensors and a count."""
    theirs, ours = _shape_summary(sd), _shape_summary(own)
    parts = [
        f"{k} {theirs[k]} vs {ours[k]}" for k in ("embed_dims", "depths", "classes") if k in theirs and k in ours and theirs[k] != ours[k]
    ]
    more = f" and {len(mismatched) - 3} more" if len(mismatched) > 3 else ""
    parts.append(f"{len(mismatched)} tensors differ in shape: {'; '.join(mismatched[:3])}{more}")
    return "; ".join(parts) + " (checkpoint vs model)"


def _complete_dataset_meta(dataset_meta: dict[str, Any], num_classes: int, source: str | os.PathLike) -> dict[str, Any]:
    from ..data.classes import default_dataset_meta

    if len(dataset_meta["classes"]) != num_classes:
        raise ValueError(f"{source} names {len(dataset_meta['classes'])} classes but its head predicts {num_classes}")
    if "palette" not in dataset_meta or len(dataset_meta["palette"]) != num_classes:
        dataset_meta = {**dataset_meta, "palette": default_dataset_meta(num_classes)["palette"]}
    return dataset_meta


def native_meta(model: nn.Module) -> dict[str, Any]:
    """What a native file stores beside the weights: the layout tag, ``model.config`` (enough to
    rebuild the architecture) and a segmentor's class names and palette."""
    meta: dict[str, Any] = {"format": NATIVE_FORMAT, "config": model.config}
    if getattr(model, "dataset_meta", None):
        meta["dataset_meta"] = model.dataset_meta
    return meta


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights in the native layout with :func:`native_meta` as ``.safetensors`` or ``.pth``."""
    return write_file({"state_dict": model.state_dict(), "meta": native_meta(model)}, path)
