"""Constants that models, data pipelines and configs share, each defined here once."""

from __future__ import annotations

from typing import Any

__all__ = ["DATA_PREPROCESSOR", "IMAGENET_MEAN", "IMAGENET_STD", "SWIN_SIZES", "TEST_CFG", "TEST_PIPELINE"]

# ImageNet statistics in RGB order and 0..255 units, as MMSegmentation and the Swin repos use them.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

# Widths, depths and heads of the Swin sizes, as in the paper.
SWIN_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]),
    "small": dict(embed_dims=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24]),
    "base": dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32]),
    "large": dict(embed_dims=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48]),
}

# The segmentor's sections as MMSegmentation's Swin + UPerNet ADE20K configs set them: the
# training batch (crop size and padding values), inference (whole image, or 512 crops at stride
# 341) and the test resize (keep the ratio, fit into 2048 x 512).
DATA_PREPROCESSOR: dict[str, Any] = dict(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), size=[512, 512], pad_val=0, seg_pad_val=255)
TEST_CFG: dict[str, Any] = dict(mode="whole", crop_size=[512, 512], stride=[341, 341])
TEST_PIPELINE: dict[str, Any] = dict(scale=[2048, 512], keep_ratio=True)
