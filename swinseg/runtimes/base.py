"""What every runtime is: a segmentor's description and a function from a normalized batch to its
decode logits."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..data.transforms import Preprocessing

__all__ = ["Runtime", "SegmentorInfo"]


@dataclass(frozen=True)
class SegmentorInfo:
    """What prediction needs of a segmentor besides its logits (a graph's metadata holds it too)."""

    num_classes: int
    preprocessing: Preprocessing
    test_cfg: dict[str, Any]
    dataset_meta: dict[str, Any]
    align_corners: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: nn.Module) -> SegmentorInfo:
        return cls(
            num_classes=model.num_classes,
            preprocessing=model.preprocessing,
            test_cfg=copy.deepcopy(model.test_cfg),
            dataset_meta=copy.deepcopy(model.dataset_meta),
            align_corners=model.align_corners,
        )


class Runtime:
    """A segmentor's decode logits computed by ``backend``: ``decode`` takes (B, 3, h, w)
    normalized images on ``device`` in ``dtype`` and returns (B, num_classes, h/4, w/4)
    float32 logits."""

    def __init__(
        self,
        info: SegmentorInfo,
        decode: Callable[[Tensor], Tensor],
        backend: str,
        precision: str,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.info, self._decode, self.backend, self.precision = info, decode, backend, precision
        self.device, self.dtype = torch.device(device), dtype

    def __repr__(self) -> str:
        return f"Runtime({self.backend}, {self.precision}, {self.num_classes} classes)"

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def preprocessing(self) -> Preprocessing:
        return self.info.preprocessing

    @property
    def test_cfg(self) -> dict[str, Any]:
        return self.info.test_cfg

    @property
    def dataset_meta(self) -> dict[str, Any]:
        return self.info.dataset_meta

    @property
    def align_corners(self) -> bool:
        return self.info.align_corners

    def decode(self, inputs: Tensor) -> Tensor:
        return self._decode(inputs).float()
