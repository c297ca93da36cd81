"""Per-pixel confidence, entropy and top-k classes, against the softmax computed by hand."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import swinseg
from swinseg.cli import main
from swinseg.data.transforms import scale_size
from swinseg.models.heads import resize
from swinseg.predict import TTA_RATIOS, predict, predict_logits, predict_outputs, preprocess, summarize

from ..helpers import tiny_segmentor


@pytest.fixture(scope="module")
def model():
    return tiny_segmentor(6)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(37, 53), (64, 48), (5, 120)])
def test_confidence_entropy_and_topk_are_the_softmax_at_the_original_size(model, size):
    image = _image(*size)
    out = predict_outputs(model, image, confidence=True, entropy=True, topk=3)[0]
    probs = predict_logits(model, image).double().softmax(0)
    assert out.labels.shape == size and torch.equal(out.labels, predict(model, image)[0])
    assert torch.allclose(out.confidence.double(), probs.max(0).values, atol=1e-6)
    assert torch.allclose(out.entropy.double(), -(probs * probs.log()).sum(0), atol=1e-5)
    top = probs.topk(3, dim=0)
    assert torch.allclose(out.topk_probs.double(), top.values, atol=1e-6)
    assert torch.equal(out.topk_classes[0], out.labels) and (out.topk_probs[0] >= out.topk_probs[1]).all()


def test_strips_give_what_one_resize_gives(model):
    logits = torch.randn(6, 13, 17)
    whole = summarize(logits, (101, 77), confidence=True, entropy=True, topk=2)
    strips = summarize(logits, (101, 77), confidence=True, entropy=True, topk=2, max_elements=6 * 77 * 4)
    assert torch.equal(whole.labels, strips.labels)
    for name in ("confidence", "entropy", "topk_probs"):
        assert torch.allclose(getattr(whole, name), getattr(strips, name), atol=1e-6), name


def test_tta_confidence_is_the_max_of_the_mean_of_the_views(model):
    image = _image(40, 56, seed=1)
    height, width = image.shape[:2]
    views = []
    with torch.no_grad():
        for ratio in TTA_RATIOS:
            x = preprocess(model, image, scale=scale_size(width, height, ratio))
            for flip in (False, True):
                logits = model.inference(x.flip(-1) if flip else x)
                logits = logits.flip(-1) if flip else logits
                views.append(resize(logits, (height, width)).softmax(1)[0].double())
    mean = torch.stack(views).mean(0)
    out = swinseg.inference(model, image, tta=True, confidence=True, topk=2)
    assert len(views) == 12 and torch.equal(out.labels, mean.argmax(0))
    assert torch.allclose(out.confidence.double(), mean.max(0).values, atol=1e-6)
    assert torch.allclose(out.topk_probs.double(), mean.topk(2, dim=0).values, atol=1e-6)


def test_predict_cli_writes_confidence_and_topk_files(model, tmp_path):
    path = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(_image(45, 70, seed=2), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert main(["predict", str(path), str(tmp_path / "a.png"), "--out", str(out), "--confidence", "--probs", "3"]) == 0
    labels = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)
    conf = cv2.imread(str(out / "a_conf.png"), cv2.IMREAD_UNCHANGED)
    saved = np.load(out / "a_probs.npz")
    expected = predict_outputs(model, str(tmp_path / "a.png"), confidence=True)[0]
    assert conf.dtype == np.uint8 and np.array_equal(conf, (expected.confidence * 255).round().numpy().astype(np.uint8))
    assert saved["classes"].shape == (3, 45, 70) and np.array_equal(saved["classes"][0], labels)
    assert np.allclose(saved["probs"][0], expected.confidence.numpy(), atol=1e-3)
    assert (conf >= 255 / 6 - 1).all()  # the predicted class is never below chance
    assert main(["predict", str(path), str(tmp_path / "a.png"), "--out", str(out), "--confidence", "--confidence-bits", "16"]) == 0
    deep = cv2.imread(str(out / "a_conf.png"), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16 and np.abs(deep / 65535 - expected.confidence.numpy()).max() < 1e-4
    assert main(["predict", str(path), str(tmp_path / "a.png"), "--out", str(out), "--probs", "7"]) == 1
