"""Drawing label maps: colour overlays with a legend of the classes present."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["caption", "colorize", "ground_truth", "heatmap", "overlay", "panel_row", "shown_classes", "side_by_side"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 RGB; ids outside the palette (e.g. 255) are black."""
    table = np.zeros((max(len(palette), int(labels.max(initial=0)) + 1), 3), np.uint8)
    table[: len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    return table[labels]


def _legend(ids: Sequence[int], classes: Sequence[str], palette: Sequence[Sequence[int]], height: int) -> np.ndarray:
    """A white panel listing each class id and name beside its colour swatch, in as many
    columns as ``height`` needs; text and swatches stay readable on small images."""
    scale = float(np.clip(height / 900, 0.45, 1.0))
    (_, text_height), baseline = cv2.getTextSize("Ag", _FONT, scale, 1)
    margin = max(int(8 * scale), 4)
    swatch = text_height + baseline + 4
    row = swatch + margin
    per_column = max((height - margin) // row, 1)
    texts = [f"{i} {classes[i] if i < len(classes) else ''}".strip() for i in ids]
    width = max((cv2.getTextSize(t, _FONT, scale, 1)[0][0] for t in texts), default=0) + swatch + 3 * margin
    columns = -(-len(texts) // per_column)
    panel = np.full((height, max(columns, 1) * width, 3), 255, np.uint8)
    for n, (i, text) in enumerate(zip(ids, texts, strict=True)):
        x, top = (n // per_column) * width + margin, margin + (n % per_column) * row
        colour = tuple(int(c) for c in palette[i]) if i < len(palette) else (0, 0, 0)
        cv2.rectangle(panel, (x, top), (x + swatch - 1, top + swatch - 1), colour, -1)
        cv2.rectangle(panel, (x, top), (x + swatch - 1, top + swatch - 1), (0, 0, 0), 1)
        text_y = top + (swatch + text_height) // 2
        cv2.putText(panel, text, (x + swatch + margin, text_y), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    palette: Sequence[Sequence[int]],
    opacity: float = 0.5,
    legend: bool = True,
) -> np.ndarray:
    """Blend the colourised ``labels`` over an (H, W, 3) RGB ``image`` (as MMSegmentation's
    visualizer: ``image * (1 - opacity) + colour * opacity``) and append a legend on the right."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity}")
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and label map {labels.shape} differ in size")
    blended = image.astype(np.float32) * (1 - opacity) + colorize(labels, palette).astype(np.float32) * opacity
    out = blended.round().clip(0, 255).astype(np.uint8)
    if legend:
        panel = _legend(np.unique(labels).tolist(), classes, palette, max(out.shape[0], 200))
        out = np.pad(out, ((0, panel.shape[0] - out.shape[0]), (0, 0), (0, 0)), constant_values=255)
        out = np.concatenate([out, panel], axis=1)
    return out


def caption(panel: np.ndarray, text: str) -> np.ndarray:
    """``panel`` (RGB, changed in place) with ``text`` at its top left, outlined so that it reads
    on any colour."""
    scale = max(panel.shape[0] / 600, 0.5)
    thick = max(int(2 * scale), 1)
    (_, text_height), _ = cv2.getTextSize(text, _FONT, scale, thick)
    x, y = 6, text_height + 6
    for dx, dy in ((-1, -1), (-1, 1), (1, -1), (1, 1), (0, 2), (2, 0), (0, -2), (-2, 0)):  # a black outline, same stroke
        cv2.putText(panel, text, (x + dx, y + dy), _FONT, scale, (0, 0, 0), thick, cv2.LINE_AA)
    cv2.putText(panel, text, (x, y), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return panel


def heatmap(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] (a confidence map) -> (H, W, 3) uint8 RGB in viridis: dark is low."""
    grey = (np.clip(values, 0, 1) * 255).round().astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def panel_row(
    panels: Sequence[tuple[str, np.ndarray]], ids: Sequence[int], classes: Sequence[str], palette: Sequence[Sequence[int]]
) -> np.ndarray:
    """Captioned (H, W, 3) RGB ``panels`` left to right with white gaps, then a legend of the
    classes ``ids``."""
    row: list[np.ndarray] = []
    for text, panel in panels:
        row += [caption(panel.copy(), text), np.full((panel.shape[0], 8, 3), 255, np.uint8)]
    out = np.concatenate(row, axis=1)
    legend = _legend(list(ids), classes, palette, max(out.shape[0], 200))
    out = np.pad(out, ((0, legend.shape[0] - out.shape[0]), (0, 0), (0, 0)), constant_values=255)
    return np.concatenate([out, legend], axis=1)


def ground_truth(image: np.ndarray, label: np.ndarray, palette: Sequence[Sequence[int]], opacity: float = 0.5) -> np.ndarray:
    """The ground-truth overlay: ignored pixels (ids outside the palette) show the image uncoloured."""
    shown = overlay(image, label, [], palette, opacity, legend=False)
    ignored = label >= len(palette)
    shown[ignored] = image[ignored]
    return shown


def shown_classes(prediction: np.ndarray, label: np.ndarray, palette: Sequence[Sequence[int]]) -> list[int]:
    """The classes a prediction and its ground truth hold, in order (ignored ids left out)."""
    return sorted(set(np.unique(prediction).tolist()) | {i for i in np.unique(label).tolist() if i < len(palette)})


def side_by_side(
    image: np.ndarray,
    prediction: np.ndarray,
    label: np.ndarray,
    classes: Sequence[str],
    palette: Sequence[Sequence[int]],
    opacity: float = 0.5,
) -> np.ndarray:
    """Prediction overlay | ground-truth overlay (ignored pixels uncoloured) | legend of the
    classes in either, each overlay captioned."""
    panels = [
        ("prediction", overlay(image, prediction, classes, palette, opacity, legend=False)),
        ("ground truth", ground_truth(image, label, palette, opacity)),
    ]
    return panel_row(panels, shown_classes(prediction, label, palette), classes, palette)
