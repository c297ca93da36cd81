"""Multi-scale + flip test-time augmentation, as MMSegmentation's ``SegTTAModel`` with the ADE20K
``tta_pipeline``: each ratio relative to the original image, with and without horizontal flip;
softmax of each view at the original size (flip undone), averaged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..data.io import ImageLike, as_rgb
from ..data.transforms import scale_size
from .heads import resize

if TYPE_CHECKING:
    from .segmentor import EncoderDecoder

__all__ = ["TTA_RATIOS", "tta_probs"]

TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


@torch.no_grad()
def tta_probs(
    model: EncoderDecoder,
    image: ImageLike,
    ratios: Sequence[float] = TTA_RATIOS,
    flip: bool = True,
    mode: str | None = None,
) -> Tensor:
    """(num_classes, H, W) class probabilities of one image averaged over the views.

    A view at ratio ``r`` is resized keeping the ratio into ``(int(w*r+0.5), int(h*r+0.5))``
    (mmcv rounds twice: the target scale, then the fitted size).
    """
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    total: Tensor | None = None
    views = 0
    for ratio in ratios:
        x = model.preprocess(rgb, scale=scale_size(width, height, ratio))
        for flipped in (False, True) if flip else (False,):
            logits = model.inference(x.flip(-1) if flipped else x, mode)
            if flipped:
                logits = logits.flip(-1)
            probs = resize(logits, (height, width), model.decode_head.align_corners).softmax(1)[0]
            total = probs if total is None else total + probs
            views += 1
    if total is None:
        raise ValueError("test-time augmentation needs at least one scale ratio")
    return total / views
