"""Overlays: blending by opacity, palette colours, and the legend panel."""

from __future__ import annotations

import numpy as np
import pytest

from swinseg.data.classes import ade20k_classes, ade20k_palette, default_dataset_meta
from swinseg.visualize import colorize, overlay


def test_ade20k_meta_is_mmsegmentations():
    assert len(ade20k_classes()) == len(ade20k_palette()) == 150
    assert ade20k_classes()[:3] == ("wall", "building", "sky") and ade20k_classes()[-1] == "flag"
    assert ade20k_palette()[0] == (120, 120, 120)
    assert default_dataset_meta(150)["classes"] == list(ade20k_classes())
    other = default_dataset_meta(7)
    assert len(other["classes"]) == len(other["palette"]) == 7


def test_colorize_uses_the_palette_and_blacks_out_ignored():
    labels = np.array([[0, 1], [2, 255]])
    rgb = colorize(labels, [[10, 20, 30], [40, 50, 60], [70, 80, 90]])
    assert rgb[0, 1].tolist() == [40, 50, 60] and rgb[1, 1].tolist() == [0, 0, 0]


@pytest.mark.parametrize("opacity", [0.0, 0.3, 1.0])
def test_overlay_blends_by_opacity(opacity):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, (30, 40))
    palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    out = overlay(image, labels, ["a", "b", "c"], palette, opacity, legend=False)
    expected = image * (1 - opacity) + np.asarray(palette)[labels] * opacity
    assert np.abs(out.astype(float) - expected).max() <= 0.5 + 1e-9
    with_legend = overlay(image, labels, ["a", "b", "c"], palette, opacity)
    assert with_legend.shape[1] > 40 and np.array_equal(with_legend[:30, :40], out)


def test_overlay_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="differ in size"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.int64), ["a"], [[0, 0, 0]])


@pytest.mark.parametrize("height", [64, 128, 512, 1200])
def test_legend_swatches_are_readable_and_nothing_is_clipped(height):
    palette = [(0, 0, 0), (220, 20, 60), (0, 128, 255), (255, 200, 0)]
    image = np.full((height, 90, 3), 128, np.uint8)
    labels = np.repeat(np.arange(4), -(-height // 4))[:height, None].repeat(90, axis=1)
    out = overlay(image, labels, ["background", "brick box", "disc", "ring"], palette, opacity=1.0)
    panel = out[:, 90:]
    assert (panel[0] == 255).all() and (panel[:, 0] == 255).all()  # a margin on the top and left edges
    assert (panel[-1] == 255).all() and (panel[:, -1] == 255).all()
    for colour in palette[1:]:
        ys, xs = np.nonzero((panel == colour).all(axis=2))
        assert np.ptp(ys) + 1 >= 12 and np.ptp(xs) + 1 >= 12, colour
