"""Named models: plain-data configs with the URL (and hash, where one is published) of their weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..configs.defaults import DATA_PREPROCESSOR, SWIN_SIZES, TEST_CFG, TEST_PIPELINE
from ..configs.schema import full_config

__all__ = ["ModelSpec", "register", "get_spec", "list_models"]

OFFICIAL_RELEASES = "https://github.com/SwinTransformer/storage/releases/download"
MMSEG_ZOO = "https://download.openmmlab.com/mmsegmentation/v0.5"


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


def _register_classifiers() -> None:
    from .swin import SwinTransformer

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
                **SWIN_SIZES[size],
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


def _register_segmentors() -> None:
    from .heads import FCNHead, UPerHead
    from .segmentor import EncoderDecoder
    from .swin import SwinTransformer

    # (size, window, pre-training: dataset and image size, model-zoo file, mIoU, ms+flip mIoU), as
    # in MMSegmentation's swin/metafile.yaml. The backbone weights training starts from are in the
    # training configs (swinseg/configs).
    releases = [
        (
            "tiny",
            7,
            "in1k",
            224,
            "upernet_swin_tiny_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K_20210531_112542-e380ad3e.pth",
            44.41,
            45.79,
        ),
        (
            "small",
            7,
            "in1k",
            224,
            "upernet_swin_small_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K_20210526_192015-ee2fff1c.pth",
            47.72,
            49.24,
        ),
        (
            "base",
            7,
            "in1k",
            224,
            "upernet_swin_base_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K_20210526_192340-593b0e13.pth",
            47.99,
            49.57,
        ),
        (
            "base",
            7,
            "in22k",
            224,
            "upernet_swin_base_patch4_window7_512x512_160k_ade20k_pretrain_224x224_22K_20210526_211650-762e2178.pth",
            50.13,
            51.9,
        ),
        (
            "base",
            12,
            "in1k",
            384,
            "upernet_swin_base_patch4_window12_512x512_160k_ade20k_pretrain_384x384_1K_20210531_132020-05b22ea4.pth",
            48.35,
            49.65,
        ),
        (
            "base",
            12,
            "in22k",
            384,
            "upernet_swin_base_patch4_window12_512x512_160k_ade20k_pretrain_384x384_22K_20210531_125459-429057bf.pth",
            50.76,
            52.4,
        ),
        ("large", 7, "in22k", 224, None, None, None),
        ("large", 12, "in22k", 384, None, None, None),
    ]
    for size, window, pretrain, img, weights, miou, miou_ms in releases:
        pre = f"{pretrain}-{img}x{img}-pre" if img != 224 else f"{pretrain}-pre"
        name = f"swin-{size}-patch4-window{window}-{pre}_upernet_8xb2-160k_ade20k-512x512"
        config = full_config(
            EncoderDecoder,
            backbone=full_config(
                SwinTransformer, pretrain_img_size=img, window_size=window, drop_path_rate=0.3, always_partition=True, **SWIN_SIZES[size]
            ),
            decode_head=full_config(UPerHead, in_channels=None, num_classes=150),
            auxiliary_head=full_config(FCNHead, in_channels=None, num_classes=150),
            data_preprocessor=DATA_PREPROCESSOR,
            test_cfg=TEST_CFG,
            test_pipeline=TEST_PIPELINE,
        )
        folder = weights.rsplit("_", 2)[0] if weights else None
        register(
            ModelSpec(
                name,
                EncoderDecoder,
                config,
                url=f"{MMSEG_ZOO}/swin/{folder}/{weights}" if weights else None,
                sha256=weights.rsplit("-", 1)[1].split(".")[0] if weights else None,
                meta=dict(
                    task="segmentation",
                    dataset="ade20k",
                    crop_size=512,
                    mIoU=miou,
                    mIoU_ms_flip=miou_ms,
                ),
            )
        )


_register_segmentors()
