"""``swinseg browse-data``: the pictures show what the pipeline feeds the model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from swinseg.cli import main
from swinseg.configs import load_config
from swinseg.models import resolve_config

from ..helpers import DEMO_CONFIG, TINY_MODEL


@pytest.fixture
def noise_dataset(tmp_path):
    """Two 40 x 60 noise images (lossless PNG) with labels, in ADE20K's layout."""
    rng = np.random.default_rng(0)
    for split, count in (("training", 2), ("validation", 2)):
        for i in range(count):
            for kind, array in (("images", rng.integers(0, 256, (40, 60, 3))), ("annotations", rng.integers(1, 8, (40, 60)))):
                path = tmp_path / "data" / kind / split / f"{split}_{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), array.astype(np.uint8))
    return tmp_path / "data"


def test_training_pictures_are_the_augmented_samples(noise_dataset, tmp_path):
    """A pipeline whose only augmentation is a certain flip: the picture's image is the flipped file."""
    overrides = [
        f"data.root={noise_dataset}",
        "data.img_suffix=.png",
        *TINY_MODEL,
        "data.pipeline.scale=[60,40]",
        "data.pipeline.ratio_range=[1.0,1.0]",
        "data.pipeline.crop_size=[40,60]",
        "data.pipeline.flip_prob=1.0",
        "data.pipeline.photometric_distortion=false",
    ]
    out = tmp_path / "browse"
    assert main(["browse-data", DEMO_CONFIG, "--out", str(out), "-n", "3", "--set", *overrides]) == 0
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["000-training_0.jpg", "001-training_1.jpg", "002-training_0.jpg"]
    size = resolve_config(load_config(DEMO_CONFIG, overrides))["model"]["data_preprocessor"]["size"]
    zoom = -(-256 // max(size[0], 40))  # padded to the batch size, then drawn at least 256 px high
    original = cv2.imread(str(noise_dataset / "images/training/training_0.png"), cv2.IMREAD_GRAYSCALE)  # luma: what JPEG keeps

    def drawn(image):
        return np.repeat(np.repeat(image, zoom, 0), zoom, 1)[16 * zoom : 40 * zoom].astype(float)  # below the caption

    shown = cv2.imread(str(files[0]), cv2.IMREAD_GRAYSCALE)[16 * zoom : 40 * zoom, : 60 * zoom]
    assert np.abs(shown - drawn(original[:, ::-1])).mean() < 6
    assert np.abs(shown - drawn(original)).mean() > 30


def test_validation_pictures_and_a_bad_split(noise_dataset, tmp_path, capsys):
    overrides = [f"data.root={noise_dataset}", "data.img_suffix=.png", *TINY_MODEL]
    out = tmp_path / "val"
    assert main(["browse-data", DEMO_CONFIG, "--out", str(out), "-n", "2", "--split", "val", "--set", *overrides]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["000-validation_0.jpg", "001-validation_1.jpg"]
    with pytest.raises(SystemExit) as exit_:
        main(["browse-data", DEMO_CONFIG, "--out", str(out), "-n", "0", "--set", *overrides])
    assert exit_.value.code == 2
    assert "-n: must be 1 or more, got 0" in capsys.readouterr().err
