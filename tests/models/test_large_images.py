"""A 20000 x 20000 image through predict (slide mode) in bounded memory: the logits are resized
back and reduced to labels in strips, never as a full-resolution (classes, H, W) map."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
import numpy as np, torch
from swinseg.engine.logger import peak_memory_mb
from swinseg.models.segmentor import EncoderDecoder
from swinseg.predict import predict, preprocess

torch.manual_seed(0)
model = EncoderDecoder(
    backbone=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)),
    decode_head=dict(channels=16, num_classes=8), auxiliary_head=None,
    test_cfg=dict(mode="slide", crop_size=[512, 512], stride=[341, 341]),
).eval()
side = 20000
image = np.empty((side, side, 3), np.uint8)
image[: side // 2], image[side // 2 :] = 40, 220
before = peak_memory_mb(torch.device("cpu"))
(labels,) = predict(model, [image])
# independent check at random pixels: bilinear samples of the low-resolution logits
with torch.no_grad():
    logits = model.inference(preprocess(model, image))
gen = torch.Generator().manual_seed(0)
ys, xs = torch.randint(0, side, (4000,), generator=gen), torch.randint(0, side, (4000,), generator=gen)
grid = torch.stack([(2 * xs + 1) / side - 1, (2 * ys + 1) / side - 1], -1).view(1, 1, -1, 2).float()
sampled = torch.nn.functional.grid_sample(logits, grid, mode="bilinear", padding_mode="border", align_corners=False)
expected = sampled[0, :, 0].argmax(0)
print(json.dumps({
    "shape": list(labels.shape), "dtype": str(labels.dtype), "before_mb": before,
    "peak_mb": peak_memory_mb(torch.device("cpu")),
    "agree": (labels[ys, xs] == expected).float().mean().item(), "classes": labels[ys, xs].unique().numel(),
}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="peak memory from /proc")
def test_a_20000_pixel_square_image_predicts_in_bounded_memory():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shape"] == [20000, 20000] and report["dtype"] == "torch.int64"
    image_mb, labels_mb = 20000**2 * 3 / 2**20, 20000**2 * 8 / 2**20
    # logits resized whole would take 8 classes x 4 bytes x 4e8 pixels = 12.2 GB more
    assert report["peak_mb"] - report["before_mb"] < labels_mb + 1024, report
    assert report["before_mb"] > image_mb  # the image itself was in memory before predicting
    # at 4000 random pixels, the labels equal the argmax of bilinear samples of the logits
    assert report["agree"] > 0.999 and report["classes"] > 1, report
