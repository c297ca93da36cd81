"""An image's logits and labels are bit-identical alone or in any batch, whatever kernels run:
every combination of candidates is forced, not only the one timing picks on this machine."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import swinseg
from swinseg import ops
from swinseg.ops.attention import KERNELS as ATTENTION
from swinseg.ops.blocks import CHUNKS
from swinseg.ops.conv import KERNELS as CONV3X3
from swinseg.ops.linear import KERNELS as LINEAR
from swinseg.predict import predict

from ..helpers import randomize_, tiny_segmentor

COMBINATIONS = list(itertools.product(ATTENTION[:2], LINEAR, CHUNKS, CONV3X3))  # bmm_f32 is for bf16/fp16


def _images(sizes):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in sizes]


@pytest.mark.parametrize(("attention_kernel", "linear_kernel", "chunk", "conv_kernel"), COMBINATIONS)
def test_each_image_computes_alike_alone_and_in_a_batch(attention_kernel, linear_kernel, chunk, conv_kernel):
    model = tiny_segmentor(num_classes=6)
    x = torch.randn(3, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), ops.forced(attention=attention_kernel, linear=linear_kernel, chunk=chunk, conv3x3=conv_kernel):
        batched = model.inference(x)
        alone = torch.cat([model.inference(x[i : i + 1]) for i in range(3)])
        slide = model.inference(x, "slide", (48, 48), (32, 32))
        slide_alone = torch.cat([model.inference(x[i : i + 1], "slide", (48, 48), (32, 32)) for i in range(3)])
    assert torch.equal(batched, alone) and torch.equal(slide, slide_alone)


def test_a_full_width_head_labels_alike_in_any_batch():
    """Swin-T UPerNet widths (768-channel pyramid pooling): oneDNN computes the 1x1 convolutions
    of the pooled maps (batch x bins^2 rows) differently for 1 and 2 images."""
    model = randomize_(swinseg.create_model("swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512")).eval()
    model.test_pipeline["scale"] = [160, 128]
    images = _images([(128, 160), (128, 160), (96, 120), (128, 160)])
    with torch.no_grad():
        x = torch.randn(2, 3, 128, 160, generator=torch.Generator().manual_seed(2))
        assert torch.equal(model.inference(x), torch.cat([model.inference(x[:1]), model.inference(x[1:])]))
    batched = predict(model, images, batch_size=3)
    assert all(torch.equal(a, predict(model, image)[0]) for a, image in zip(batched, images, strict=True))
