"""Converting a checkpoint file from any supported layout into another."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from ..files import atomic_write
from .architecture import checkpoint_config
from .formats import from_native, is_segmentor
from .hub import sha256sum
from .io import write_file
from .load import NATIVE_FORMAT, read_dataset_meta, read_native
from .preprocessing import SECTIONS, hf_preprocessor_config, mmseg_cfg_text

__all__ = ["convert_checkpoint", "hf_upernet_config", "publish_checkpoint"]


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


def convert_checkpoint(source: str | os.PathLike, dest: str | os.PathLike, *, to: str = "native") -> tuple[str, Path]:
    """Convert a checkpoint between layouts; returns ``(source_format, dest_path)``.

    For one Swin: ``native`` writes safetensors or ``.pth`` with the architecture in the
    metadata; ``mmseg`` writes what MMSegmentation's ``swin2mmseg.py`` writes (a flat ``.pth``,
    no classifier head), except the official file's ``attn_mask`` buffers, which swin2mmseg.py
    copies as ``stages.*.blocks.*.attn_mask``: they are the fixed shift masks of the pre-training
    resolution, and MMSegmentation's ``SwinTransformer`` builds its masks in ``forward`` and
    never loads them (they are unexpected keys there); ``official`` writes ``{'model': ...}``; ``timm`` and ``hf`` write
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
    config = checkpoint_config(sd, meta) if segmentor else {}
    if segmentor and to == "hf" and not dest.suffix:
        hf = hf_upernet_config(config, dataset_meta)
        write_file(out, dest / "model.safetensors")
        atomic_write(dest / "config.json", lambda tmp: tmp.write_text(json.dumps(hf, indent=2)))
        preprocessor = json.dumps(hf_preprocessor_config(config), indent=2)
        atomic_write(dest / "preprocessor_config.json", lambda tmp: tmp.write_text(preprocessor))
        return fmt, dest
    if segmentor and to in ("mmseg", "official") and dest.suffix != ".safetensors":
        # the test settings go where each runner saves its config text: meta['cfg'] (1.x), meta['config'] (0.x)
        text = mmseg_cfg_text(config)
        if to == "mmseg":
            new = {"dataset_meta": dataset_meta} if dataset_meta else {}
            return fmt, write_file({"state_dict": out, "meta": {**new, "cfg": text}}, dest)
        legacy = {"CLASSES": tuple(dataset_meta["classes"]), "PALETTE": dataset_meta.get("palette")} if dataset_meta else {}
        return fmt, write_file({"state_dict": out, "meta": {**legacy, "config": text}}, dest)
    kept = [k for k in SECTIONS if k in config]
    if kept:
        warnings.warn(
            f"{dest}: the {to} layout as {dest.suffix or 'a file'} has no place for the segmentor's {', '.join(kept)} "
            f"(test scale {config.get('test_pipeline', {}).get('scale')}, {config.get('test_cfg', {}).get('mode')} inference): "
            f"a model built from it uses the defaults; convert to .pth (mmseg, official) or an HF directory to keep them",
            stacklevel=2,
        )
    return fmt, write_file({"model": out} if to == "official" and dest.suffix != ".safetensors" else out, dest)


def publish_checkpoint(source: str | os.PathLike, dest: str | os.PathLike, *, to: str = "mmseg") -> Path:
    """MMSegmentation's ``publish_model.py``: the weights and metadata of ``source`` (a training
    checkpoint or any layout; no optimizer, scaler or RNG state), as CPU tensors, in the ``mmseg``
    layout (``.pth``, what MMSegmentation's ``load_checkpoint`` reads) or ``native``
    (``.safetensors``), named ``<dest stem>-<first 8 hex digits of its SHA-256><suffix>``: the
    model zoo's convention, which downloads check. Returns the file written."""
    if to not in ("mmseg", "native"):
        raise ValueError(f"publish writes the mmseg or native layout, got {to!r}")
    dest = Path(dest)
    suffix = ".safetensors" if to == "native" else ".pth"
    stem = dest.name[: -len(dest.suffix)] if dest.suffix in (".pth", ".safetensors") else dest.name
    staged = dest.with_name(f".{stem}.publishing{suffix}")
    try:
        convert_checkpoint(source, staged, to=to)
        final = dest.with_name(f"{stem}-{sha256sum(staged)[:8]}{suffix}")
        os.replace(staged, final)
    finally:
        staged.unlink(missing_ok=True)
    return final
