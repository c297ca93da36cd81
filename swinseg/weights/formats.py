"""Weight layouts of the Swin implementations in the field, and conversions to and from ours.

The backbone functions take and return a flat state dict of one Swin model (backbone or
classifier) without a prefix such as ``backbone.``; ``to_native``/``from_native`` also take a
whole segmentor (``backbone.*``, ``decode_head.*``, ``auxiliary_head.*``), whose heads keep
MMSegmentation's names natively. Formats:

- ``native``: this package (``stages.{i}.blocks.{j}.attn.qkv``, merging at the end of a stage,
  official concat order);
- ``official``: microsoft/Swin-Transformer and Swin-Transformer-Semantic-Segmentation
  (``layers.*``, ``head``, ``norm``);
- ``mmseg``: MMSegmentation (``stages.*.attn.w_msa``, ``ffn.layers``, ``patch_embed.projection``,
  merging in ``nn.Unfold`` order), as written by its ``swin2mmseg.py``;
- ``timm``: pytorch-image-models (merging at the start of the next stage, ``head.fc``);
- ``hf``: HF transformers ``SwinForImageClassification`` / ``SwinBackbone`` (separate query,
  key and value; read in both the hub's v4 names and the v5 names, written in v4 names), and
  ``UperNetForSemanticSegmentation`` (heads with ``batch_norm`` and ``classifier``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from ..ops.windows import relative_position_index

__all__ = ["FORMATS", "detect_format", "is_segmentor", "split_segmentor", "to_native", "from_native"]

StateDict = dict[str, Tensor]
FORMATS = ("native", "official", "mmseg", "timm", "hf")

_BUFFERS = re.compile(r"(relative_position_index|attn_mask)$")


def _rename(sd: Mapping[str, Tensor], rules: list[tuple[str, str]]) -> StateDict:
    out = {}
    for key, value in sd.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def _drop_buffers(sd: Mapping[str, Tensor]) -> StateDict:
    return {k: v for k, v in sd.items() if not _BUFFERS.search(k)}


# --- patch merging order -------------------------------------------------------------------
# Official (and native): channel k*C + c with k over (0,0), (1,0), (0,1), (1,1).
# MMSegmentation's nn.Unfold: channel c*4 + k with k over (0,0), (0,1), (1,0), (1,1).
_SWAP = [0, 2, 1, 3]  # its own inverse


def _merge_to_unfold(x: Tensor) -> Tensor:
    c = x.shape[-1] // 4
    return x.reshape(*x.shape[:-1], 4, c)[..., _SWAP, :].transpose(-1, -2).reshape(x.shape)


def _merge_from_unfold(x: Tensor) -> Tensor:
    c = x.shape[-1] // 4
    return x.reshape(*x.shape[:-1], c, 4).transpose(-1, -2)[..., _SWAP, :].reshape(x.shape)


def _map_downsample(sd: StateDict, fn: Callable[[Tensor], Tensor]) -> StateDict:
    return {k: (fn(v) if re.search(r"downsample\.(norm|reduction)\.", k) else v) for k, v in sd.items()}


def _with_index(sd: StateDict, table_suffix: str, index_suffix: str) -> StateDict:
    """Add the relative position index buffers that other implementations keep in their state dicts."""
    out = dict(sd)
    for key, table in sd.items():
        if key.endswith(table_suffix):
            window = (int(round(table.shape[0] ** 0.5)) + 1) // 2
            out[key[: -len(table_suffix)] + index_suffix] = relative_position_index(window, window)
    return out


# --- official ------------------------------------------------------------------------------
def _official_to_native(sd: StateDict) -> StateDict:
    return _rename(_drop_buffers(sd), [(r"^layers\.", "stages.")])


def _native_to_official(sd: StateDict) -> StateDict:
    sd = _rename(sd, [(r"^stages\.", "layers.")])
    return _with_index(sd, "attn.relative_position_bias_table", "attn.relative_position_index")


# --- MMSegmentation ------------------------------------------------------------------------
_MMSEG_RULES = [
    (r"^patch_embed\.proj\.", "patch_embed.projection."),
    (r"\.attn\.(qkv|proj|relative_position_bias_table)", r".attn.w_msa.\1"),
    (r"\.mlp\.fc1\.", ".ffn.layers.0.0."),
    (r"\.mlp\.fc2\.", ".ffn.layers.1."),
]


def _mmseg_to_native(sd: StateDict) -> StateDict:
    sd = _rename(
        _drop_buffers(sd),
        [
            (r"^patch_embed\.projection\.", "patch_embed.proj."),
            (r"\.attn\.w_msa\.", ".attn."),
            (r"\.ffn\.layers\.0\.0\.", ".mlp.fc1."),
            (r"\.ffn\.layers\.1\.", ".mlp.fc2."),
        ],
    )
    return _map_downsample(sd, _merge_from_unfold)


def _native_to_mmseg(sd: StateDict) -> StateDict:
    sd = _rename(_map_downsample(sd, _merge_to_unfold), _MMSEG_RULES)
    sd = {k: v for k, v in sd.items() if not k.startswith("head.")}
    return _with_index(sd, "attn.w_msa.relative_position_bias_table", "attn.w_msa.relative_position_index")


# --- timm ----------------------------------------------------------------------------------
def _timm_to_native(sd: StateDict) -> StateDict:
    sd = _rename(
        _drop_buffers(sd),
        [
            (r"^layers\.(\d+)\.downsample\.", lambda m: f"stages.{int(m.group(1)) - 1}.downsample."),
            (r"^layers\.", "stages."),
            (r"^head\.fc\.", "head."),
        ],
    )
    return sd


def _native_to_timm(sd: StateDict) -> StateDict:
    return _rename(
        sd,
        [
            (r"^stages\.(\d+)\.downsample\.", lambda m: f"layers.{int(m.group(1)) + 1}.downsample."),
            (r"^stages\.", "layers."),
            (r"^head\.", "head.fc."),
        ],
    )


# --- HF transformers -----------------------------------------------------------------------
_HF_BLOCK = r"^(?:swin\.)?encoder\.layers\.(\d+)\.blocks\.(\d+)\."
_HF_QKV = {
    "q": ("attention.self.query", "attention.q_proj"),
    "k": ("attention.self.key", "attention.k_proj"),
    "v": ("attention.self.value", "attention.v_proj"),
}


def _hf_to_native(sd: StateDict) -> StateDict:
    sd = _rename(
        _drop_buffers(sd),
        [
            (r"^(?:swin\.)?embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
            (r"^(?:swin\.)?embeddings\.norm\.", "patch_embed.norm."),
            (r"^(?:swin\.)?embeddings\.position_embeddings$", "absolute_pos_embed"),
            (r"^swin\.layernorm\.", "norm."),
            (r"^classifier\.", "head."),
            (r"^hidden_states_norms\.stage(\d+)\.", lambda m: f"norm{int(m.group(1)) - 1}."),
            (r"^(?:swin\.)?encoder\.layers\.(\d+)\.downsample\.", r"stages.\1.downsample."),
            (_HF_BLOCK, r"stages.\1.blocks.\2."),
            (r"\.layernorm_before\.", ".norm1."),
            (r"\.layernorm_after\.", ".norm2."),
            (r"\.attention\.(?:self|relative_position_bias)\.relative_position_bias_table$", ".attn.relative_position_bias_table"),
            (r"\.attention\.(?:output\.dense|o_proj)\.", ".attn.proj."),
            (r"\.(?:intermediate\.dense|mlp\.fc1)\.", ".mlp.fc1."),
            (r"\.(?:output\.dense|mlp\.fc2)\.", ".mlp.fc2."),
        ],
    )
    out: StateDict = {}
    parts: dict[str, dict[str, Tensor]] = {}
    qkv = re.compile(r"^(.*)\.attention\.(?:self\.(query|key|value)|([qkv])_proj)\.(weight|bias)$")
    for key, value in sd.items():
        m = qkv.match(key)
        if m is None:
            out[key] = value
            continue
        which = (m.group(2) or m.group(3))[0]
        parts.setdefault(f"{m.group(1)}.attn.qkv.{m.group(4)}", {})[which] = value
    for key, qkv_parts in parts.items():
        if set(qkv_parts) != {"q", "k", "v"}:
            raise KeyError(f"HF checkpoint lacks query, key or value for {key}: has only {sorted(qkv_parts)}")
        out[key] = torch.cat([qkv_parts["q"], qkv_parts["k"], qkv_parts["v"]])
    return out


def _native_to_hf(sd: StateDict) -> StateDict:
    classifier = "head.weight" in sd
    root = "swin." if classifier else ""
    out: StateDict = {}
    for key, value in sd.items():
        m = re.match(r"^(.*)\.attn\.qkv\.(weight|bias)$", key)
        if m:
            for part, name in zip(value.chunk(3), ("query", "key", "value"), strict=True):
                out[f"{m.group(1)}.attention.self.{name}.{m.group(2)}"] = part
        else:
            out[key] = value
    out = _rename(
        out,
        [
            (r"^patch_embed\.proj\.", "embeddings.patch_embeddings.projection."),
            (r"^patch_embed\.norm\.", "embeddings.norm."),
            (r"^absolute_pos_embed$", "embeddings.position_embeddings"),
            (r"^norm\.", "layernorm."),
            (r"^head\.", "classifier."),
            (r"^norm(\d+)\.", lambda m: f"hidden_states_norms.stage{int(m.group(1)) + 1}."),
            (r"^stages\.", "encoder.layers."),
            (r"\.norm1\.", ".layernorm_before."),
            (r"\.norm2\.", ".layernorm_after."),
            (r"\.attn\.relative_position_bias_table$", ".attention.self.relative_position_bias_table"),
            (r"\.attn\.proj\.", ".attention.output.dense."),
            (r"\.mlp\.fc1\.", ".intermediate.dense."),
            (r"\.mlp\.fc2\.", ".output.dense."),
        ],
    )
    out = {(k if k.startswith(("classifier.", "hidden_states_norms.")) else root + k): v for k, v in out.items()}
    return _with_index(out, "attention.self.relative_position_bias_table", "attention.self.relative_position_index")


_TO_NATIVE: dict[str, Callable[[StateDict], StateDict]] = {
    "native": _drop_buffers,
    "official": _official_to_native,
    "mmseg": _mmseg_to_native,
    "timm": _timm_to_native,
    "hf": _hf_to_native,
}
_FROM_NATIVE: dict[str, Callable[[StateDict], StateDict]] = {
    "native": dict,
    "official": _native_to_official,
    "mmseg": _native_to_mmseg,
    "timm": _native_to_timm,
    "hf": _native_to_hf,
}


# --- segmentors -----------------------------------------------------------------------------
_HEADS = ("decode_head.", "auxiliary_head.")
_HF_HEADS_TO_NATIVE = [(r"\.batch_norm\.", ".bn."), (r"^(decode_head|auxiliary_head)\.classifier\.", r"\1.conv_seg.")]
_NATIVE_HEADS_TO_HF = [(r"\.bn\.", ".batch_norm."), (r"^(decode_head|auxiliary_head)\.conv_seg\.", r"\1.classifier.")]


def is_segmentor(sd: Mapping[str, Tensor]) -> bool:
    """Whether ``sd`` holds a whole segmentor (``backbone.*`` and head keys) rather than one Swin."""
    return any(k.startswith(("backbone.", *_HEADS)) for k in sd)


def split_segmentor(sd: Mapping[str, Tensor]) -> tuple[StateDict, StateDict]:
    """``(backbone without its prefix, heads)`` of a segmentor state dict; other keys are dropped."""
    backbone = {k[len("backbone.") :]: v for k, v in sd.items() if k.startswith("backbone.")}
    heads = {k: v for k, v in sd.items() if k.startswith(_HEADS)}
    return backbone, heads


def _segmentor_to_native(sd: Mapping[str, Tensor], fmt: str | None) -> StateDict:
    backbone, heads = split_segmentor(sd)
    if fmt == "hf" or any(".batch_norm." in k for k in heads):
        heads = _rename(heads, _HF_HEADS_TO_NATIVE)
    out = {f"backbone.{k}": v for k, v in to_native(backbone, fmt).items()} if backbone else {}
    return out | heads


def _segmentor_from_native(sd: Mapping[str, Tensor], fmt: str) -> StateDict:
    if fmt == "timm":
        raise ValueError("timm has no segmentor layout; choose native, mmseg, official or hf")
    backbone, heads = split_segmentor(sd)
    if fmt == "hf":
        heads = _rename(heads, _NATIVE_HEADS_TO_HF)
    return {f"backbone.{k}": v for k, v in from_native(backbone, fmt).items()} | heads


def detect_format(sd: Mapping[str, Tensor]) -> str:
    """Name the layout of a Swin or segmentor state dict (by its backbone's keys)."""
    if is_segmentor(sd):
        sd = split_segmentor(sd)[0]
    keys = list(sd)
    if any("patch_embeddings.projection" in k or k.startswith("swin.encoder.") for k in keys):
        return "hf"
    if any(".attn.w_msa." in k or k.startswith("patch_embed.projection.") or ".ffn.layers." in k for k in keys):
        return "mmseg"
    if any(k.startswith("stages.") for k in keys) and any(".attn.qkv." in k for k in keys):
        return "native"
    if any(k.startswith("layers.") for k in keys):
        first_merge = [k for k in keys if re.match(r"^layers\.\d+\.downsample\.", k)]
        official = any(k.startswith("layers.0.downsample.") for k in first_merge)
        if "head.fc.weight" in sd or (first_merge and not official):
            return "timm"
        return "official"
    sample = ", ".join(keys[:5]) or "no keys"
    raise ValueError(f"not a Swin Transformer state dict in a known layout (first keys: {sample})")


def to_native(sd: Mapping[str, Tensor], fmt: str | None = None) -> StateDict:
    """Convert a state dict (one Swin or a segmentor) from ``fmt`` (detected when None) to the native layout."""
    if is_segmentor(sd):
        return _segmentor_to_native(sd, fmt)
    fmt = fmt or detect_format(sd)
    if fmt not in _TO_NATIVE:
        raise ValueError(f"unknown checkpoint format {fmt!r}; choose from {', '.join(FORMATS)}")
    return _TO_NATIVE[fmt](dict(sd))


def from_native(sd: Mapping[str, Tensor], fmt: str) -> StateDict:
    """Convert a native state dict (one Swin or a segmentor) to the layout ``fmt``."""
    if fmt not in _FROM_NATIVE:
        raise ValueError(f"unknown checkpoint format {fmt!r}; choose from {', '.join(FORMATS)}")
    if is_segmentor(sd):
        return _segmentor_from_native(sd, fmt)
    return _FROM_NATIVE[fmt](dict(sd))
