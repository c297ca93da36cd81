"""A segmentor's test-time settings (normalization, keep-ratio test scale, whole or slide
windows) carried in each layout's own place, so that a converted checkpoint labels as the model
it came from: MMSegmentation's ``meta['cfg']`` (1.x; ``meta['config']`` in 0.x), the config text
its runner saves, and an HF directory's ``preprocessor_config.json``.

Reading MMSegmentation's text also gives a real MMSegmentation checkpoint's own test scale.
"""

from __future__ import annotations

import ast
from typing import Any

__all__ = ["SECTIONS", "hf_preprocessor_config", "mmseg_cfg_text", "preprocessing_from_meta"]

# the parts of a segmentor's config that say how it is tested (the rest is its architecture)
SECTIONS = ("data_preprocessor", "test_cfg", "test_pipeline")


def mmseg_cfg_text(config: dict[str, Any]) -> str:
    """The test-time sections of ``config`` (those it has) as MMSegmentation config text, what
    ``meta['cfg']`` holds."""
    parts = []
    if "data_preprocessor" in config:
        pre = config["data_preprocessor"]
        parts.append(f"data_preprocessor=dict(mean={list(pre['mean'])}, std={list(pre['std'])}, bgr_to_rgb=True)")
    if "test_cfg" in config:
        test = config["test_cfg"]
        parts.append(f"test_cfg=dict(mode={test['mode']!r}, crop_size={tuple(test['crop_size'])}, stride={tuple(test['stride'])})")
    text = f"model = dict({', '.join(parts)})\n"
    if "test_pipeline" in config:
        pipeline = config["test_pipeline"]
        resize = f"dict(type='Resize', scale={tuple(pipeline['scale'])}, keep_ratio={bool(pipeline.get('keep_ratio', True))})"
        text += f"test_pipeline = [dict(type='LoadImageFromFile'), {resize}, dict(type='PackSegInputs')]\n"
    return text


def hf_preprocessor_config(config: dict[str, Any]) -> dict[str, Any]:
    """``preprocessor_config.json`` for an HF UPerNet directory: the usual keys where ``config``
    has them (0..1 mean/std, the test scale's sides) and, under ``swinseg``, the exact sections."""
    out: dict[str, Any] = {"image_processor_type": "SegformerImageProcessor", "do_reduce_labels": False}
    if "test_pipeline" in config:
        scale = config["test_pipeline"]["scale"]
        out.update(do_resize=True, size={"shortest_edge": min(scale), "longest_edge": max(scale)})
    if "data_preprocessor" in config:
        pre = config["data_preprocessor"]
        out.update(do_normalize=True, image_mean=[m / 255 for m in pre["mean"]], image_std=[s / 255 for s in pre["std"]])
    out["swinseg"] = {k: config[k] for k in SECTIONS if k in config}
    return out


def _literal(node: ast.AST) -> Any:
    """A config value: literals, lists, tuples, dicts and ``dict(...)`` calls; a name (another
    variable) reads as None; ValueError for anything else."""
    if isinstance(node, ast.Name):
        return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {k.arg: _literal(k.value) for k in node.keywords if k.arg}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    return ast.literal_eval(node)


def _from_cfg_text(text: str) -> dict[str, Any]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    values: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                values[stmt.targets[0].id] = _literal(stmt.value)
            except (ValueError, TypeError, SyntaxError):
                continue  # a value that is not plain data (a variable, an expression): not ours to read
    out: dict[str, Any] = {}
    model = values.get("model") if isinstance(values.get("model"), dict) else {}
    pre = model.get("data_preprocessor") or {}
    if isinstance(pre, dict) and "mean" in pre and "std" in pre:
        out["data_preprocessor"] = {"mean": list(pre["mean"]), "std": list(pre["std"])}
    test = model.get("test_cfg") or {}
    if isinstance(test, dict) and test.get("mode") in ("whole", "slide"):
        out["test_cfg"] = {
            k: list(v) if isinstance(v, (list, tuple)) else v for k, v in test.items() if k in ("mode", "crop_size", "stride")
        }
    pipeline = values.get("test_pipeline")
    resize = next((p for p in pipeline if isinstance(p, dict) and p.get("type") == "Resize"), None) if isinstance(pipeline, list) else None
    if resize and resize.get("keep_ratio") and isinstance(resize.get("scale"), list):
        out["test_pipeline"] = {"scale": list(resize["scale"]), "keep_ratio": True}
    return out


def preprocessing_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The test-time sections a foreign checkpoint's metadata gives (some, all or none of
    :data:`SECTIONS`): an HF ``preprocessor_config.json`` written by swinseg, else an
    MMSegmentation config text."""
    hf = meta.get("hf_preprocessor")
    if isinstance(hf, dict) and isinstance(hf.get("swinseg"), dict):
        return {k: v for k, v in hf["swinseg"].items() if k in SECTIONS and isinstance(v, dict)}
    text = meta.get("cfg") if isinstance(meta.get("cfg"), str) else meta.get("config")
    return _from_cfg_text(text) if isinstance(text, str) else {}
