"""Bad samples and bad losses in training and evaluation: one-line errors naming the file, an
opt-in skip that counts, and a NaN loss that leaves the last checkpoint intact."""

from __future__ import annotations

import shutil

import pytest
import torch

from swinseg.cli import main
from swinseg.engine.checkpoints import latest_checkpoint, load_state
from swinseg.engine.trainer import Trainer
from swinseg.tools.synthetic import write_dataset
from tests.helpers import DEMO_CONFIG, TINY_OVERRIDES, tiny_train_config


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "synthetic", train=6, val=2, size=(48, 64))


@pytest.fixture
def corrupt(clean, tmp_path):
    """A copy of the dataset whose second training image is a truncated JPEG."""
    root = shutil.copytree(clean, tmp_path / "corrupt")
    bad = root / "images/training/synthetic_training_00001.jpg"
    bad.write_bytes(bad.read_bytes()[:300])
    return root, bad


@pytest.mark.parametrize("workers", [0, 2])
def test_a_bad_training_sample_stops_with_its_file_name(corrupt, tmp_path, capsys, workers):
    root, bad = corrupt
    overrides = [f"data.root={root}", *TINY_OVERRIDES, f"data.num_workers={workers}"]
    assert main(["train", DEMO_CONFIG, "--work-dir", str(tmp_path / "work"), "--set", *overrides]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: cannot decode {bad} as an image (corrupt or not an image file)"
    assert not any("Traceback" in line for line in err)


def test_bad_training_samples_can_be_skipped_and_are_counted(corrupt, tmp_path, capsys):
    root, bad = corrupt
    trainer = Trainer(tiny_train_config(root, "data.skip_bad_samples=true", "schedule.max_iters=6"), tmp_path, progress=False)
    trainer.train()
    # batch 2 over 6 images for 6 iterations: every epoch draws the bad image once
    assert trainer.skipped_samples == 2
    err = capsys.readouterr().err
    assert err.count(f"skipped a bad training sample: cannot decode {bad}") == 2
    assert "2 bad training sample(s) were skipped" in err


def test_a_bad_validation_image_is_a_one_line_error(clean, tmp_path, capsys):
    overrides = [f"data.root={clean}", *TINY_OVERRIDES]
    trainer = Trainer(tiny_train_config(clean), tmp_path / "work", progress=False)
    trainer._checkpoint(0, 1)
    root = shutil.copytree(clean, tmp_path / "broken")
    bad = root / "images/validation/synthetic_validation_00000.jpg"
    bad.write_bytes(b"")
    overrides[0] = f"data.root={root}"
    assert main(["test", DEMO_CONFIG, str(tmp_path / "work/iter_0.pth"), "--set", *overrides]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: image {bad} is empty"
    assert main(["check-data", DEMO_CONFIG, "--set", f"data.root={root}"]) == 1
    assert f"problem: image {bad} is empty" in capsys.readouterr().out


def test_nan_loss_stops_and_the_last_checkpoint_stays_good(clean, tmp_path, monkeypatch):
    trainer = Trainer(tiny_train_config(clean), tmp_path, progress=False)
    loss = trainer.model.loss

    def nan_from_iteration_4(inputs, labels):
        losses = loss(inputs, labels)
        if trainer.iteration >= 3:
            losses["decode.loss_ce"] = losses["decode.loss_ce"] * float("nan")
        return losses

    monkeypatch.setattr(trainer.model, "loss", nan_from_iteration_4)
    with pytest.raises(FloatingPointError, match=r"loss is nan at iteration 4: stopping \(the last checkpoint, .*iter_3\.pth, is intact\)"):
        trainer.train()
    state = load_state(latest_checkpoint(tmp_path))
    assert state["iteration"] == 3
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_fp16_scaler_skips_a_nan_step(clean, tmp_path, monkeypatch):
    trainer = Trainer(tiny_train_config(clean, "train.amp=fp16"), tmp_path, progress=False)
    trainer.train_step()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items() if v.is_floating_point()}
    scale = trainer.scaler.get_scale()
    loss = trainer.model.loss
    monkeypatch.setattr(trainer.model, "loss", lambda x, y: {k: v * float("inf") if "loss" in k else v for k, v in loss(x, y).items()})
    trainer.train_step()
    assert trainer.scaler.get_scale() == scale / 2
    after = trainer.model.state_dict()
    params = {n for n, _ in trainer.model.named_parameters()}
    assert all(torch.equal(before[k], after[k]) for k in before if k in params)
