"""Load any supported checkpoint into a :class:`~swinseg.models.swin.SwinTransformer`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .formats import detect_format, from_native, to_native
from .hub import download, is_url
from .io import read_checkpoint, unwrap_state_dict, write_file

__all__ = [
    "LoadReport",
    "load_checkpoint",
    "read_native",
    "save_checkpoint",
    "infer_config",
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

    A segmentor checkpoint (``backbone.*`` keys) contributes its backbone.
    """
    obj, meta = read_checkpoint(resolve_source(source, sha256))
    sd = unwrap_state_dict(obj)
    if any(k.startswith("backbone.") for k in sd):
        sd = {k[len("backbone.") :]: v for k, v in sd.items() if k.startswith("backbone.")}
    fmt = "native" if meta.get("format") == NATIVE_FORMAT else detect_format(sd)
    return to_native(sd, fmt), meta, fmt


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


def _fit_to_model(model: nn.Module, own: StateDict, sd: StateDict, report: LoadReport) -> StateDict:
    """Drop what a backbone does not have, resize tables and embeddings, and check shapes."""
    if getattr(model, "num_classes", 0) == 0:
        report.dropped = sorted(k for k in sd if _CLASSIFIER_KEYS.match(k))
        sd = {k: v for k, v in sd.items() if not _CLASSIFIER_KEYS.match(k)}
    mismatched = []
    for key, value in sd.items():
        if key not in own or own[key].shape == value.shape:
            continue
        target = own[key].shape
        if key.endswith("relative_position_bias_table") and value.shape[1] == target[1]:
            sd[key] = _resize_bias_table(value, target[0])
            report.resized.append(key)
        elif key == "absolute_pos_embed" and value.shape[2] == target[2]:
            sd[key] = _resize_pos_embed(value, model.pos_grid)
            report.resized.append(key)
        else:
            mismatched.append(f"  {key}: checkpoint {tuple(value.shape)} vs model {tuple(target)}")
    if mismatched:
        raise ValueError(f"{report.source}: shapes differ from the model's:\n" + "\n".join(mismatched))
    return sd


def load_checkpoint(
    model: nn.Module, source: str | os.PathLike, strict: bool = True, sha256: str | None = None
) -> LoadReport:
    """Load a checkpoint of any supported layout (path, directory or URL) into ``model``.

    Official ImageNet checkpoints go into a backbone as MMSegmentation loads them: the head and
    final norm are dropped and the output norms ``norm{i}`` keep their initial values (reported
    as ``expected_missing``). Bias tables and absolute position embeddings are resized
    bicubically when the window or grid differs. With ``strict``, any other missing or
    unexpected key is an error naming the keys.
    """
    sd, _, fmt = read_native(source, sha256)
    report = LoadReport(source=str(source), format=fmt)
    own = model.state_dict()
    sd = _fit_to_model(model, own, sd, report)
    missing = sorted(set(own) - set(sd))
    if not any(_STAGE_NORM.match(k) for k in sd):
        report.expected_missing = [k for k in missing if _STAGE_NORM.match(k)]
    report.missing = [k for k in missing if k not in report.expected_missing]
    report.unexpected = sorted(set(sd) - set(own))
    if strict and (report.missing or report.unexpected):
        raise KeyError(
            f"{source} does not fit the model (strict=True):\n"
            f"  missing: {', '.join(report.missing) or '-'}\n  unexpected: {', '.join(report.unexpected) or '-'}"
        )
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return report


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


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights in the native layout with its config (``.safetensors`` or ``.pth``)."""
    return write_file({"state_dict": model.state_dict(), "meta": {"format": NATIVE_FORMAT, "config": model.config}}, path)


def convert_checkpoint(source: str | os.PathLike, dest: str | os.PathLike, to: str = "native") -> tuple[str, Path]:
    """Convert a checkpoint file between layouts; returns ``(source_format, dest_path)``.

    ``native`` writes safetensors or ``.pth`` with the architecture in the metadata;
    ``mmseg`` writes what MMSegmentation's ``swin2mmseg.py`` writes (a flat ``.pth``, no
    classifier head); ``official`` writes ``{'model': ...}``; ``timm`` and ``hf`` write their
    layouts as ``.pth`` or ``.safetensors``.
    """
    sd, meta, fmt = read_native(source)
    dest = Path(dest)
    if to == "native":
        config = meta.get("config") if meta.get("format") == NATIVE_FORMAT else infer_config(sd)
        return fmt, write_file({"state_dict": sd, "meta": {"format": NATIVE_FORMAT, "config": config}}, dest)
    out = from_native(sd, to)
    return fmt, write_file({"model": out} if to == "official" and dest.suffix != ".safetensors" else out, dest)
