"""Segmentation datasets: image/annotation folders as MMSegmentation's ``BaseSegDataset`` reads
them (ADE20K's released layout, or a user's own), and the training pipeline of the Swin configs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..configs.defaults import IMAGENET_MEAN, IMAGENET_STD
from ..configs.rules import CONFIG_RULES, check_rules
from .classes import ade20k_classes, ade20k_palette, default_dataset_meta
from .io import read_image
from .transforms import photometric_distortion, random_crop, random_flip, random_resize, to_input

__all__ = ["SegDataset", "TrainPipeline", "build_dataset", "read_label", "reduce_zero_label", "train_pipeline"]


def read_label(path: str | os.PathLike) -> np.ndarray:
    """A label map file as an (H, W) integer array of its stored values, read with Pillow as
    MMSegmentation's ``LoadAnnotations`` does: gray 8/16-bit PNGs give their values, palette
    PNGs their palette indices (VOC-style annotations), with no EXIF rotation."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"annotation {path} is empty")
    try:
        with Image.open(path) as img:
            label = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"cannot decode annotation {path} (corrupt, truncated or not an image file: {e})") from None
    if label.ndim == 3:
        raise ValueError(
            f"annotation {path} has {label.shape[2]} channels: labels must be single-channel class ids "
            f"(gray or palette PNG); convert colour-coded labels to class ids first"
        )
    return label.astype(np.uint8) if label.dtype == bool else label


def reduce_zero_label(label: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """MMSegmentation's ``reduce_zero_label``: 0 ("other") -> ignore, k -> k-1, ignore stays ignore."""
    out = label.astype(np.int64) - 1
    out[(label == 0) | (label == ignore_index)] = ignore_index
    return out.astype(label.dtype)


@dataclass
class SegDataset:
    """Pairs of ``img_dir/<name><img_suffix>`` and ``ann_dir/<name><seg_map_suffix>``, searched
    recursively and sorted by image path (MMSegmentation's order).

    ``__getitem__`` gives the (H, W, 3) uint8 RGB image and the (H, W) label map (reduced when
    ``reduce_zero_label``). A label value outside 0..num_classes-1 that is not ``ignore_index`` is
    an error naming the file and the values.
    """

    img_dir: str | os.PathLike
    ann_dir: str | os.PathLike
    classes: Sequence[str]
    palette: Sequence[Sequence[int]]
    img_suffix: str = ".jpg"
    seg_map_suffix: str = ".png"
    reduce_zero_label: bool = False
    ignore_index: int = 255
    samples: list[tuple[Path, Path]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.img_dir, self.ann_dir = Path(self.img_dir), Path(self.ann_dir)
        if len(self.palette) != len(self.classes):
            raise ValueError(f"{len(self.classes)} classes but {len(self.palette)} palette colours")
        for folder, what in ((self.img_dir, "image"), (self.ann_dir, "annotation")):
            if not folder.is_dir():
                raise FileNotFoundError(f"{what} folder {folder} does not exist")
        images = {p.relative_to(self.img_dir).as_posix()[: -len(self.img_suffix)]: p for p in self._files(self.img_dir, self.img_suffix)}
        labels = {
            p.relative_to(self.ann_dir).as_posix()[: -len(self.seg_map_suffix)]: p for p in self._files(self.ann_dir, self.seg_map_suffix)
        }
        if not images:
            raise FileNotFoundError(f"no images ending in {self.img_suffix} in {self.img_dir}")
        for missing, have, where in (
            (images.keys() - labels.keys(), images, self.ann_dir),
            (labels.keys() - images.keys(), labels, self.img_dir),
        ):
            if missing:
                names = sorted(missing)
                more = f" and {len(names) - 3} more" if len(names) > 3 else ""
                suffix = self.seg_map_suffix if where == self.ann_dir else self.img_suffix
                raise FileNotFoundError(
                    f"{len(names)} file(s) without a counterpart ({suffix} in {where}): {', '.join(str(have[n]) for n in names[:3])}{more}"
                )
        self.samples = [(images[k], labels[k]) for k in sorted(images, key=lambda k: str(images[k]))]

    @staticmethod
    def _files(folder: Path, suffix: str) -> list[Path]:
        return [p for p in folder.rglob(f"*{suffix}") if p.is_file()]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def dataset_meta(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "palette": [list(c) for c in self.palette]}

    def __len__(self) -> int:
        return len(self.samples)

    def load_label(self, index: int) -> np.ndarray:
        """The (H, W) label map of sample ``index``, reduced and range-checked."""
        path = self.samples[index][1]
        label = read_label(path)
        if self.reduce_zero_label:
            label = reduce_zero_label(label, self.ignore_index)
        bad = (label >= self.num_classes) & (label != self.ignore_index)
        if bad.any():
            values = np.unique(label[bad])
            shown = ", ".join(str(v + self.reduce_zero_label) for v in values[:8]) + (", ..." if len(values) > 8 else "")
            raise ValueError(
                f"annotation {path} has values {shown} outside 0..{self.num_classes - 1 + self.reduce_zero_label} "
                f"(num_classes={self.num_classes}, reduce_zero_label={self.reduce_zero_label}, "
                f"ignore_index={self.ignore_index}): check num_classes and reduce_zero_label"
            )
        return label

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path = self.samples[index][0]
        image, label = read_image(image_path), self.load_label(index)
        if image.shape[:2] != label.shape:
            raise ValueError(
                f"image {image_path} is {image.shape[1]}x{image.shape[0]} but its annotation "
                f"{self.samples[index][1]} is {label.shape[1]}x{label.shape[0]}"
            )
        return image, label


def build_dataset(data: dict[str, Any], split: str, num_classes: int, ignore_index: int = 255) -> SegDataset:
    """The ``train`` or ``val`` split of a resolved config's ``data`` section for a model of ``num_classes``."""
    if data["type"] == "ade20k":
        classes, palette = data["classes"] or ade20k_classes(), data["palette"] or ade20k_palette()
    else:
        meta = default_dataset_meta(len(data["classes"]) if data["classes"] else num_classes)
        classes, palette = data["classes"] or meta["classes"], data["palette"] or meta["palette"]
    if len(classes) != num_classes:
        raise ValueError(
            f"the dataset has {len(classes)} classes but the model predicts {num_classes}: "
            f"set model.decode_head.num_classes and model.auxiliary_head.num_classes (or data.classes)"
        )
    root = Path(data["root"])
    return SegDataset(
        root / data[split]["img_dir"],
        root / data[split]["ann_dir"],
        classes,
        palette,
        img_suffix=data["img_suffix"],
        seg_map_suffix=data["seg_map_suffix"],
        reduce_zero_label=data["reduce_zero_label"],
        ignore_index=ignore_index,
    )


def train_pipeline(config: dict[str, Any]) -> TrainPipeline:
    """The training pipeline a resolved config describes: ``data.pipeline``, normalized by the
    model's ``data_preprocessor``, cropped with its ``ignore_index``."""
    model = config["model"]
    pre = model["data_preprocessor"]
    return TrainPipeline(**config["data"]["pipeline"], mean=pre["mean"], std=pre["std"], ignore_index=model["ignore_index"])


@dataclass
class TrainPipeline:
    """The Swin configs' training pipeline on one sample: random resize (keep ratio), random crop
    with ``cat_max_ratio``, horizontal flip, photometric distortion, normalize. Randomness comes
    from ``rng``; padding to the crop size happens when batching (:func:`~swinseg.data.transforms.pad_batch`)."""

    scale: Sequence[int] = (2048, 512)
    ratio_range: Sequence[float] = (0.5, 2.0)
    crop_size: Sequence[int] = (512, 512)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    photometric_distortion: bool = True
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    ignore_index: int = 255

    def __post_init__(self) -> None:
        """Every value checked where it enters, named as the config names it (``data.pipeline.*``)."""
        check_rules(vars(self), CONFIG_RULES["data"]["pipeline"], "data.pipeline.")
        for name in ("scale", "crop_size", "ratio_range"):
            if len(getattr(self, name)) != 2:
                raise ValueError(f"data.pipeline.{name} must be a pair, got {list(getattr(self, name))}")
        if self.ratio_range[0] > self.ratio_range[1]:
            raise ValueError(f"data.pipeline.ratio_range must be [low, high] with low <= high, got {list(self.ratio_range)}")

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """(H, W, 3) uint8 RGB and (H, W) labels -> normalized (3, h, w) float and (h, w) int64."""
        image, label = random_resize(image, label, rng, self.scale, self.ratio_range)
        image, label = random_crop(image, label, rng, self.crop_size, self.cat_max_ratio, self.ignore_index)
        image, label = random_flip(image, label, rng, self.flip_prob)
        if self.photometric_distortion:
            image = photometric_distortion(np.ascontiguousarray(image), rng)
        return to_input(image, self.mean, self.std), torch.from_numpy(np.ascontiguousarray(label).astype(np.int64))
