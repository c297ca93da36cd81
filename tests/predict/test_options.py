"""One options record: checked where it is built, read by every path, never written into the model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from swinseg.cli import main
from swinseg.configs import load_config
from swinseg.predict import PredictOptions, image_logits, predict, predict_outputs, preprocess

from ..helpers import DEMO_CONFIG, tiny_segmentor


@pytest.mark.parametrize(
    "fields, named",
    [
        (dict(mode="sliding"), "mode"),
        (dict(mode="whole", crop=64), "crop and stride"),
        (dict(crop=0), "crop"),
        (dict(stride=2.5), "stride"),
        (dict(topk=-1), "topk"),
        (dict(confidence_bits=16), "confidence_bits"),
        (dict(confidence=True, confidence_bits=12), "confidence_bits"),
        (dict(batch_size=0), "batch_size"),
        (dict(backend="tensorrt"), "backend"),
        (dict(dtype="int4"), "dtype"),
        (dict(tta_ratios=()), "tta_ratios"),
    ],
)
def test_a_bad_option_is_refused_in_one_line_naming_it(fields, named):
    with pytest.raises(ValueError, match=named) as error:
        PredictOptions(**fields)
    assert "\n" not in str(error.value)


def test_windows_come_from_the_options_over_the_models_test_cfg():
    cfg = {"mode": "whole", "crop_size": [512, 512], "stride": [341, 341]}
    assert PredictOptions().windows(cfg) == ("whole", [512, 512], [341, 341])
    assert PredictOptions(crop=256).windows(cfg) == ("slide", [256, 256], [341, 341])  # a crop asks for slide windows
    assert PredictOptions(mode="slide", stride=100).windows(cfg) == ("slide", [512, 512], [100, 100])
    assert PredictOptions().windows(dict(cfg, mode="slide"))[0] == "slide"


def test_the_config_test_section_is_the_default_and_flags_win():
    config = load_config(DEMO_CONFIG, ["test.mode=slide", "test.tta=true"])
    assert PredictOptions.from_config(config) == PredictOptions(mode="slide", tta=True)
    assert PredictOptions.from_config(config, mode="whole", backend="onnxruntime") == PredictOptions(
        mode="whole", tta=True, backend="onnxruntime"
    )
    whole = load_config(DEMO_CONFIG, ["test.mode=whole"])
    assert PredictOptions.from_config(whole, crop=64).windows({"mode": "whole", "crop_size": [9, 9], "stride": [9, 9]})[0] == "slide"


def test_predicting_with_options_leaves_the_model_as_it_was():
    model = tiny_segmentor(4).eval()
    before = copy.deepcopy(model.test_cfg)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    slide = PredictOptions(mode="slide", crop=32, stride=24)
    with torch.no_grad():
        expected = model.inference(preprocess(model, image), "slide", [32, 32], [24, 24])
        assert torch.equal(image_logits(model, preprocess(model, image), slide), expected)
    model.train()
    predict_outputs(model, image, slide, confidence=True)
    predict(model, image, tta=True, tta_ratios=(0.5, 1.0), tta_flip=False)
    assert model.test_cfg == before and model.training  # no option written into the model; its mode restored


def test_the_command_line_names_flags_not_parameters(tmp_path, capsys):
    args = ["predict", "unused.pth", "x.jpg", "--out", str(tmp_path), "--probs", "-2"]
    assert main(args) == 1
    assert "--probs must be 0 or more" in capsys.readouterr().err


def test_an_unknown_keyword_names_itself_and_the_options():
    model = tiny_segmentor(num_classes=3)
    with pytest.raises(TypeError, match="'ratios'.*tta_ratios"):
        predict(model, [np.zeros((32, 32, 3), np.uint8)], ratios=[1.0])
