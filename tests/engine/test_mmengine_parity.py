"""The training recipe side by side with MMEngine building MMSegmentation's own config, run by
the interpreter named in $MMSEG_PYTHON (see DEVELOPERS.md); skipped without it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

import swinseg
from swinseg.configs import load_config
from swinseg.engine.optim import WarmupPolyLR, build_optimizer, no_decay_names
from swinseg.weights.formats import from_native

MMSEG_PYTHON = os.environ.get("MMSEG_PYTHON")
pytestmark = pytest.mark.skipif(not MMSEG_PYTHON, reason="set MMSEG_PYTHON to an interpreter with mmsegmentation 1.x")
NAME = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("mmengine") / "recipe.json"
    tests = Path(__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": str(tests / "models")}
    subprocess.run(
        [MMSEG_PYTHON, str(Path(__file__).with_name("mmengine_recipe_reference.py")), str(out)], check=True, env=env, capture_output=True
    )
    return json.loads(out.read_text())


def test_same_parameters_without_weight_decay(reference):
    config = load_config(NAME)
    model = swinseg.create_model(NAME)
    ours = list(model.state_dict())
    marked = {n: torch.full(t.shape, float(i)) for i, (n, t) in enumerate(model.state_dict().items())}
    to_ours = {k: ours[int(v.flatten()[0])] for k, v in from_native(marked, "mmseg").items()}
    assert {to_ours[k] for k in reference["params"]} == {n for n, _ in model.named_parameters()}
    assert {to_ours[k] for k in reference["no_decay"]} == set(no_decay_names(model, config["optimizer"]["no_decay_keys"]))
    opt = build_optimizer(model, **config["optimizer"])
    assert opt.defaults["lr"] == reference["optimizer"]["lr"] and list(opt.defaults["betas"]) == reference["optimizer"]["betas"]
    assert opt.param_groups[0]["weight_decay"] == reference["optimizer"]["weight_decay"]


def test_same_learning_rates(reference):
    schedule = WarmupPolyLR(**load_config(NAME)["schedule"])
    for it, lr in reference["lr"].items():
        assert schedule.lr(6e-5, int(it)) == pytest.approx(lr, rel=1e-9, abs=1e-16), it
