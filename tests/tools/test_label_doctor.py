"""The label-setup doctor on datasets written here, one mistake each."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from swinseg.cli import main
from swinseg.configs import load_config
from swinseg.data.classes import ade20k_palette
from swinseg.tools.check_data import check_config
from swinseg.tools.label_doctor import colour_to_ids

from ..helpers import DEMO_CONFIG

SEVEN = ["sky", "ground", "disc", "box", "triangle", "blob", "polygon"]
PALETTE = [[70, 130, 180], [152, 251, 152], [220, 20, 60], [180, 90, 40], [250, 170, 30], [120, 60, 220], [0, 160, 160]]


def _dataset(root, labels: list[np.ndarray]) -> str:
    """The labels as annotations (RGB when 3-channel) of both splits, with random images."""
    rng = np.random.default_rng(0)
    for split in ("training", "validation"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i, label in enumerate(labels):
            image = rng.integers(0, 256, (*label.shape[:2], 3), dtype=np.uint8)
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), image)
            stored = cv2.cvtColor(label, cv2.COLOR_RGB2BGR) if label.ndim == 3 else label
            cv2.imwrite(str(root / "annotations" / split / f"{i}.png"), stored)
    return str(root)


def _findings(root: str, *overrides: str, classes: int = 7) -> list:
    names = SEVEN if classes == 7 else [f"c{i}" for i in range(classes)]
    config = load_config(
        DEMO_CONFIG,
        [
            f"data.root={root}",
            f"data.classes={names}",
            "data.palette=null" if classes != 7 else f"data.palette={PALETTE}",
            f"model.decode_head.num_classes={classes}",
            f"model.auxiliary_head.num_classes={classes}",
            *overrides,
        ],
    )
    return check_config(config, workers=2, progress=False)[2]


def _blocks(values: list[int], size: int = 24) -> np.ndarray:
    label = np.zeros((size, size * len(values)), np.uint8)
    for i, v in enumerate(values):
        label[:, i * size : (i + 1) * size] = v
    return label


def test_binary_masks_saved_as_0_and_255(tmp_path):
    root = _dataset(tmp_path, [_blocks([0, 255, 0]), _blocks([255, 0, 0])])
    (finding,) = _findings(root, "data.reduce_zero_label=false", classes=2)
    assert finding.severity == "problem" and "only 0 and 255" in finding.text and "33.3% of pixels" in finding.text
    assert "  decode_head: {num_classes: 2}" in finding.fix and any("reduce_zero_label: false" in f for f in finding.fix)


def test_reduce_zero_label_on_when_0_is_a_class(tmp_path):
    root = _dataset(tmp_path, [_blocks([0, 1, 2, 3]), _blocks([4, 5, 6, 0])])
    texts = [f.text for f in _findings(root, "data.reduce_zero_label=true")]
    assert any("reduce_zero_label is on" in t and "0..6 already fit num_classes=7" in t for t in texts)


def test_reduce_zero_label_off_when_0_means_other(tmp_path):
    root = _dataset(tmp_path, [_blocks([0, 1, 2, 3, 4]), _blocks([5, 6, 7, 0, 0])])
    (finding,) = [f for f in _findings(root, "data.reduce_zero_label=false") if f.severity == "problem"]
    assert "values 7" in finding.text and "beyond num_classes=7" in finding.text
    assert finding.fix[0] == "if 0 means unlabelled/other: data: {reduce_zero_label: true}"


def test_values_beyond_num_classes(tmp_path):
    root = _dataset(tmp_path, [_blocks([1, 2, 3, 9]), _blocks([4, 5, 6, 7, 12])])
    (finding,) = [f for f in _findings(root, "data.reduce_zero_label=true") if f.severity == "problem"]
    assert "values 9, 12" in finding.text and "after reduce_zero_label" in finding.text
    assert "  decode_head: {num_classes: 12}" in finding.fix  # raw 12 is class 11 after the reduction


@pytest.mark.parametrize("palette_name", ["config", "ade20k"])
def test_colour_coded_masks_and_the_palette_they_match(tmp_path, palette_name):
    palette = PALETTE if palette_name == "config" else [list(c) for c in ade20k_palette()[:7]]
    ids = _blocks([0, 1, 2, 3, 4, 5, 6])
    rgb = np.asarray(palette, np.uint8)[ids]
    root = _dataset(tmp_path, [rgb, rgb[:, ::-1].copy()])
    problems = [f for f in _findings(root, "data.reduce_zero_label=false") if f.severity == "problem"]
    assert len(problems) == 1 and "colour-coded RGB images" in problems[0].text
    assert ("the config's palette" if palette_name == "config" else "ADE20K's palette") in problems[0].text
    assert np.array_equal(colour_to_ids(rgb, palette), ids)


def test_classes_that_never_occur_and_heavy_imbalance(tmp_path):
    label = np.zeros((40, 300), np.uint8)
    label[:1, :2] = 1
    label[5:, 100:] = 2
    root = _dataset(tmp_path, [label, label])
    findings = _findings(root, "data.reduce_zero_label=false")
    absent = next(f for f in findings if "never occur" in f.text)
    assert "4 class(es)" in absent.text and "box, triangle, blob, polygon" in absent.text
    imbalance = next(f for f in findings if "imbalance" in f.text)
    assert "'ground'" in imbalance.text
    weights = [float(w) for w in imbalance.fix[1].split("[")[1].split("]")[0].split(", ")]
    assert len(weights) == 7 and weights[1] == max(weights) and weights[3:] == [0.0] * 4


def test_check_data_prints_the_fix_and_fails(tmp_path, capsys):
    root = _dataset(tmp_path, [_blocks([0, 255, 0])])
    args = ["check-data", DEMO_CONFIG, "--set", f"data.root={root}", "data.reduce_zero_label=false", "data.classes=[bg, fg]"]
    args += ["data.palette=null", "model.decode_head.num_classes=2", "model.auxiliary_head.num_classes=2"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "[label setup]" in captured.out and "problem: the masks hold only 0 and 255" in captured.out
    assert "1 in the label setup" in captured.err
