"""Side by side with MMSegmentation's own backbone, run by the interpreter named in $MMSEG_PYTHON.

MMSegmentation cannot be a dependency (mmcv); DEVELOPERS.md says how to make that interpreter.
Without it these tests are skipped; the HF ``SwinBackbone`` tests cover the same conventions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

import swinseg
from swinseg import SwinTransformer
from swinseg.predict import predict, predict_logits

from ..helpers import max_diff, randomize_

MMSEG_PYTHON = os.environ.get("MMSEG_PYTHON")
pytestmark = pytest.mark.skipif(not MMSEG_PYTHON, reason="set MMSEG_PYTHON to an interpreter with mmsegmentation 1.x")
REFERENCE = Path(__file__).with_name("mmseg_reference.py")
BACKENDS = ["torch", *(b for b in ("onnxruntime", "openvino") if importlib.util.find_spec(b))]


def _mmseg_outputs(tmp_path, official_ckpt, config, inputs):
    torch.save(inputs, tmp_path / "inputs.pt")
    subprocess.run(
        [MMSEG_PYTHON, str(REFERENCE), str(official_ckpt), json.dumps(config), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
        check=True,
    )
    return torch.load(tmp_path / "out.pt")


@pytest.mark.parametrize(
    "config,sizes",
    [
        (dict(), [(224, 224), (512, 512), (97, 203), (1, 1), (7, 300)]),
        (dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=12), [(384, 384), (150, 77)]),
        (dict(embed_dims=16, depths=[1, 3, 2], num_heads=[1, 2, 4], strides=[4, 2, 2], out_indices=[0, 2], window_size=5), [(61, 89)]),
    ],
)
@pytest.mark.parametrize("layout", ["official", "mmseg"])
def test_backbone_matches_mmsegmentation(tmp_path, config, sizes, layout):
    """Weights reach MMSegmentation through its swin2mmseg converter, or ours (loaded strictly)."""
    ours = randomize_(SwinTransformer(**config)).eval()
    swinseg.save_checkpoint(ours, tmp_path / "ours.safetensors")
    swinseg.convert_checkpoint(tmp_path / "ours.safetensors", tmp_path / "theirs.pth", to=layout)
    inputs = [torch.randn(2, 3, *s) for s in sizes]
    expected = _mmseg_outputs(tmp_path, tmp_path / "theirs.pth", dict(config, drop_path_rate=0.0), inputs)
    with torch.no_grad():
        for x, ref in zip(inputs, expected, strict=True):
            outs = ours(x)
            assert len(outs) == len(ref)
            for a, b in zip(outs, ref, strict=True):
                assert max_diff(a, b) < 1e-4


def test_window_change_resizes_bias_tables_as_mmsegmentation(tmp_path):
    """ImageNet weights for window 7 in a window-12 backbone: MMSegmentation's init_weights resizes the tables."""
    source = randomize_(SwinTransformer(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=7))
    swinseg.save_checkpoint(source, tmp_path / "w7.safetensors")
    swinseg.convert_checkpoint(tmp_path / "w7.safetensors", tmp_path / "w7_mmseg.pth", to="mmseg")
    # MMSegmentation's loader would trip over the old (49 x 49) index buffers: published pretrain files for
    # window 12 never meet this, so give it the tables alone
    state = {k: v for k, v in torch.load(tmp_path / "w7_mmseg.pth").items() if not k.endswith("relative_position_index")}
    torch.save(state, tmp_path / "w7_mmseg.pth")
    config = dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=12)
    ours = SwinTransformer(**config).eval()
    report = swinseg.load_checkpoint(ours, tmp_path / "w7.safetensors")
    assert len(report.resized) == 8
    inputs = [torch.randn(1, 3, 200, 136)]
    init_cfg = dict(type="Pretrained", checkpoint=str(tmp_path / "w7_mmseg.pth"))
    expected = _mmseg_outputs(tmp_path, tmp_path / "w7_mmseg.pth", dict(config, drop_path_rate=0.0, init_cfg=init_cfg), inputs)
    with torch.no_grad():
        for a, b in zip(ours(inputs[0]), expected[0], strict=True):
            assert max_diff(a, b) < 1e-4


SEG_CONFIG = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"
SMALL = dict(
    backbone=dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], drop_path_rate=0.0),
    decode_head=dict(channels=32, dropout_ratio=0.0),
    auxiliary_head=dict(channels=16, dropout_ratio=0.0),
)
MM_SMALL = {  # SMALL as MMSegmentation's config overrides say it
    "backbone": SMALL["backbone"],
    "decode_head": dict(SMALL["decode_head"], in_channels=[32, 64, 128, 256]),
    "auxiliary_head": dict(SMALL["auxiliary_head"], in_channels=128),
}
SEGMENTOR_REFERENCE = Path(__file__).with_name("mmseg_segmentor_reference.py")


def test_segmentor_matches_mmsegmentation(tmp_path, monkeypatch):
    """UPerNet end to end through MMSegmentation's own API: inference_model (whole and slide) on
    image files, by every backend installed (torch, ONNX Runtime, OpenVINO), SegTTAModel with the ADE20K tta_pipeline, and the training losses."""
    import cv2

    monkeypatch.setenv("SWINSEG_HOME", str(tmp_path / "home"))  # exported graphs
    ours = randomize_(swinseg.create_model(SEG_CONFIG, **SMALL)).eval()
    ours.dataset_meta = {"classes": [f"c{i}" for i in range(150)], "palette": [[i, 2 * i % 256, 255 - i] for i in range(150)]}
    swinseg.save_checkpoint(ours, tmp_path / "ours.safetensors")
    swinseg.convert_checkpoint(tmp_path / "ours.safetensors", tmp_path / "theirs.pth", to="mmseg")
    gen = torch.Generator().manual_seed(0)
    images = []
    for i, (h, w) in enumerate([(120, 170), (512, 683), (37, 300)]):
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.uint8).numpy())
        images.append(str(path))
    inputs = torch.randn(2, 3, 96, 128, generator=gen)
    labels = torch.randint(0, 150, (2, 96, 128), generator=gen)
    labels[0, :40] = 255
    torch.save((inputs, labels), tmp_path / "batch.pt")
    request = dict(
        config=SEG_CONFIG,
        model=MM_SMALL,
        checkpoint=str(tmp_path / "theirs.pth"),
        images=images,
        crop_size=[256, 256],
        stride=[171, 171],
        loss_batch=str(tmp_path / "batch.pt"),
    )
    (tmp_path / "request.json").write_text(json.dumps(request))
    subprocess.run([MMSEG_PYTHON, str(SEGMENTOR_REFERENCE), str(tmp_path / "request.json"), str(tmp_path / "out.pt")], check=True)
    expected = torch.load(tmp_path / "out.pt")

    assert expected["dataset_meta"]["classes"] == ours.dataset_meta["classes"]
    ours.test_cfg.update(crop_size=[256, 256], stride=[171, 171])
    for backend in BACKENDS:  # the same windows and resize for every runtime: only the logits differ
        for mode in ("whole", "slide"):
            for path, (logits, pred) in zip(images, expected[mode], strict=True):
                mine = predict_logits(ours, path, mode=mode, backend=backend)
                assert max_diff(mine, logits) < 1e-4 * logits.abs().max().item(), (backend, mode, path)
                assert (mine.argmax(0) == pred).float().mean() > 0.999, (backend, mode, path)
    for backend in BACKENDS:
        for path, pred in zip(images, expected["tta"], strict=True):
            mine = predict(ours, path, tta=True, backend=backend)[0]
            assert (mine == pred).float().mean() > 0.999, (backend, path)
    ours.train()
    losses = ours.loss(inputs, labels)
    assert set(losses) == set(expected["loss"])
    for key, value in expected["loss"].items():
        assert abs(losses[key].item() - value.item()) < 1e-4 * max(1.0, abs(value.item())), key


def test_a_published_training_checkpoint_loads_into_mmsegmentations_upernet(tmp_path):
    """swinseg publish of a training checkpoint (weights, optimizer, RNG state): MMSegmentation's
    init_model / load_checkpoint reads it into its own UPerNet, which then computes our logits."""
    import cv2

    from swinseg.weights import native_meta, publish_checkpoint
    from swinseg.weights.io import write_file

    ours = randomize_(swinseg.create_model(SEG_CONFIG, **SMALL)).eval()
    optimizer = torch.optim.AdamW(ours.parameters())
    ours.loss(torch.randn(1, 3, 64, 64), torch.randint(0, 150, (1, 64, 64)))["decode.loss_ce"].backward()
    optimizer.step()
    state = {"state_dict": ours.state_dict(), "meta": native_meta(ours), "optimizer": optimizer.state_dict(), "iteration": 1}
    write_file(state, tmp_path / "iter_1.pth")
    published = publish_checkpoint(tmp_path / "iter_1.pth", tmp_path / "small_upernet.pth")
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), torch.randint(0, 256, (120, 170, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8).numpy())
    request = dict(config=SEG_CONFIG, model=MM_SMALL, checkpoint=str(published), images=[str(image)], crop_size=[96, 96], stride=[64, 64])
    (tmp_path / "request.json").write_text(json.dumps(request))
    subprocess.run([MMSEG_PYTHON, str(SEGMENTOR_REFERENCE), str(tmp_path / "request.json"), str(tmp_path / "out.pt")], check=True)
    ((logits, _),) = torch.load(tmp_path / "out.pt")["whole"]
    mine = predict_logits(ours, str(image))
    assert max_diff(mine, logits) < 1e-4 * logits.abs().max().item()
