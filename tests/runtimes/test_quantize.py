"""Where INT8 calibration images come from: a folder (recursively, images only) or a config's
training split, evenly thinned to NNCF's subset size."""

from __future__ import annotations

import pytest

from swinseg.configs import dump_config, load_config
from swinseg.runtimes import quantize
from swinseg.tools.synthetic import write_dataset

from ..helpers import DEMO_CONFIG


def test_a_config_gives_its_training_images(tmp_path):
    root = write_dataset(tmp_path / "data", train=5, val=2, size=(32, 40))
    config = tmp_path / "config.yaml"
    config.write_text(dump_config(load_config(DEMO_CONFIG, [f"data.root={root}"])))
    training = sorted((root / "images" / "training").iterdir())
    assert sorted(quantize.calibration_files(str(config), 7)) == training
    with pytest.raises(ValueError, match="7 classes but the model predicts 5"):
        quantize.calibration_files(str(config), 5)


def test_a_folder_is_searched_for_images_and_thinned_evenly(tmp_path, monkeypatch):
    for i in range(10):
        (tmp_path / "a" / f"{i:02d}").mkdir(parents=True)
        (tmp_path / "a" / f"{i:02d}" / "x.png").write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    assert len(quantize.calibration_files(str(tmp_path / "a"), 5)) == 10
    monkeypatch.setattr(quantize, "SUBSET", 4)
    picked = quantize.calibration_files(str(tmp_path / "a"), 5)
    assert [p.parent.name for p in picked] == ["00", "02", "05", "07"]
