"""Named models: plain-data configs with the URL (and hash, where one is published) of their weights."""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

__all__ = ["ModelSpec", "register", "get_spec", "list_models", "merge_config", "full_config"]

OFFICIAL_RELEASES = "https://github.com/SwinTransformer/storage/releases/download"


@dataclass(frozen=True)
class ModelSpec:
    """A named model: how to build it from ``config`` and where its pretrained weights live.

    ``sha256`` may be a prefix (MMSegmentation publishes the first 8 hex digits in file names).
    """

    name: str
    builder: Callable[..., nn.Module]
    config: dict[str, Any]
    url: str | None = None
    sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``."""
    from fnmatch import fnmatch

    return sorted(name for name in _REGISTRY if fnmatch(name, pattern))


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        from difflib import get_close_matches

        close = get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see swinseg.list_models()"
        raise KeyError(f"unknown model {name!r}{hint}") from None


def full_config(builder: Callable[..., Any], **values: Any) -> dict[str, Any]:
    """Every keyword argument of ``builder`` with its default, updated by ``values``."""
    params = inspect.signature(builder).parameters
    config = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    return merge_config(config, values)


def merge_config(base: dict[str, Any], overrides: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Recursively merge ``overrides`` into a copy of ``base``; unknown keys are an error naming the key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if key not in out:
            from difflib import get_close_matches

            close = get_close_matches(key, out, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyError(f"unknown config key {path + key!r}{hint}")
        if isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = merge_config(out[key], value, f"{path}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _register_classifiers() -> None:
    from .swin import SwinTransformer

    sizes = {
        "tiny": dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]),
        "small": dict(embed_dims=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24]),
        "base": dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32]),
        "large": dict(embed_dims=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48]),
    }
    # (size, window, image size, ImageNet-1K checkpoint, ImageNet-22K checkpoint), as released.
    releases = [
        ("tiny", 7, 224, "v1.0.0/swin_tiny_patch4_window7_224.pth", "v1.0.8/swin_tiny_patch4_window7_224_22k.pth"),
        ("small", 7, 224, "v1.0.0/swin_small_patch4_window7_224.pth", "v1.0.8/swin_small_patch4_window7_224_22k.pth"),
        ("base", 7, 224, "v1.0.0/swin_base_patch4_window7_224.pth", "v1.0.0/swin_base_patch4_window7_224_22k.pth"),
        ("base", 12, 384, "v1.0.0/swin_base_patch4_window12_384.pth", "v1.0.0/swin_base_patch4_window12_384_22k.pth"),
        ("large", 7, 224, "v1.0.0/swin_large_patch4_window7_224_22kto1k.pth", "v1.0.0/swin_large_patch4_window7_224_22k.pth"),
        ("large", 12, 384, "v1.0.0/swin_large_patch4_window12_384_22kto1k.pth", "v1.0.0/swin_large_patch4_window12_384_22k.pth"),
    ]
    drop_path = {"tiny": 0.2, "small": 0.3, "base": 0.5, "large": 0.2}
    for size, window, img, in1k, in22k in releases:
        name = f"swin_{size}_patch4_window{window}_{img}"
        for suffix, classes, path in (("", 1000, in1k), ("_22k", 21841, in22k)):
            config = full_config(
                SwinTransformer,
                pretrain_img_size=img,
                window_size=window,
                drop_path_rate=drop_path[size],
                num_classes=classes,
                always_partition=False,
                **sizes[size],
            )
            register(
                ModelSpec(
                    name + suffix,
                    SwinTransformer,
                    config,
                    url=f"{OFFICIAL_RELEASES}/{path}",
                    meta=dict(task="classification", input_size=img, dataset="imagenet-22k" if classes > 1000 else "imagenet-1k"),
                )
            )


_register_classifiers()
