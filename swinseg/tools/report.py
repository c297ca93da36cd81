"""``swinseg test --report DIR``: one self-contained HTML page of an evaluation (no network, its
pictures beside it): the summary, the per-class table (sortable), the confusion matrix as a
picture with the most confused pairs, the worst images, and the run's facts.

Everything is written under DIR; the page is ``DIR/index.html``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..data.dataset import SegDataset
from ..data.io import write_image
from ..engine.metrics import METRICS, IoUMetric, area_metrics
from ..files import atomic_write, check_writable
from ..predict import PredictOptions, predict_outputs
from ..progress import progress_bar
from ..visualize import ground_truth, heatmap, overlay, panel_row, shown_classes

__all__ = ["Report", "confusion_picture", "most_confused", "write_report"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
COLUMNS = ("IoU", "Acc", "Dice", "Fscore", "Precision", "Recall")


@dataclass
class Report:
    """What the page shows beside the metric: ``summary`` (name -> value, e.g. mIoU and the
    published one), ``notes`` (lines such as the reproduction doctor's), ``facts`` (checkpoint,
    config, machine, backend, time: name -> text)."""

    title: str
    summary: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)


def _text_strip(names: Sequence[str], cell: int, scale: float) -> np.ndarray:
    """White (len(names) * cell, width) strip with one right-aligned name per ``cell`` rows."""
    width = max((cv2.getTextSize(n, _FONT, scale, 1)[0][0] for n in names), default=0) + 8
    strip = np.full((len(names) * cell, width, 3), 255, np.uint8)
    for i, name in enumerate(names):
        (w, h), _ = cv2.getTextSize(name, _FONT, scale, 1)
        cv2.putText(strip, name, (width - w - 4, i * cell + (cell + h) // 2), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def confusion_picture(confusion: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """(C, C) counts -> an RGB picture of the row-normalized matrix (each ground-truth row sums
    to 1; a row without pixels stays white), class names on both axes, in viridis with a scale.
    Cells are 12 px or more, so 150 names stay readable."""
    n = len(classes)
    cell = max(12, 480 // max(n, 1))
    scale = 0.38 if cell < 16 else 0.5
    rows = confusion.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(rows > 0, confusion / np.maximum(rows, 1), np.nan)
    cells = heatmap(np.nan_to_num(share))
    cells[np.isnan(share)] = 255
    matrix = np.kron(cells, np.ones((cell, cell, 1), np.uint8))
    grid = np.arange(0, n * cell + 1, cell)
    matrix[grid[:-1], :] = matrix[:, grid[:-1]] = 230 if n > 40 else 255  # faint cell borders
    labels = [f"{name} {i}" for i, name in enumerate(classes)]
    left = _text_strip(labels, cell, scale)
    top = np.rot90(_text_strip(labels, cell, scale))  # names read bottom to top above their columns
    bar = heatmap(np.linspace(1, 0, n * cell)[:, None].repeat(16, 1))
    bar_text = np.full((n * cell, 40, 3), 255, np.uint8)
    for value, y in ((1.0, 10), (0.5, n * cell // 2), (0.0, n * cell - 4)):
        cv2.putText(bar_text, f"{value:.1f}", (4, y + 4), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    gap = np.full((n * cell, 12, 3), 255, np.uint8)
    body = np.concatenate([left, matrix, gap, bar, bar_text], axis=1)
    head = np.full((top.shape[0], body.shape[1], 3), 255, np.uint8)
    head[:, left.shape[1] : left.shape[1] + n * cell] = top
    picture = np.concatenate([head, body], axis=0)
    margin = 36
    picture = np.pad(picture, ((margin, 12), (margin, 12), (0, 0)), constant_values=255)
    cv2.putText(picture, "prediction", (margin + left.shape[1], 24), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    side = np.full((24, picture.shape[0], 3), 255, np.uint8)  # turned a quarter left: x becomes height - 1 - y
    (text_width, _), _ = cv2.getTextSize("ground truth", _FONT, 0.6, 1)
    middle = margin + top.shape[0] + n * cell // 2
    cv2.putText(side, "ground truth", (picture.shape[0] - middle - text_width // 2, 18), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    picture[:, :24] = np.rot90(side)
    return picture


def most_confused(confusion: np.ndarray, classes: Sequence[str], k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` largest off-diagonal counts: ground truth, prediction, pixels, and the share of
    the ground-truth class's pixels that went to that prediction (%)."""
    off = confusion.astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None, kind="stable")[::-1][:k]
    rows = confusion.sum(1)
    pairs = []
    for flat in order:
        truth, pred = divmod(int(flat), confusion.shape[1])
        if off[truth, pred] == 0:
            break
        share = 100 * off[truth, pred] / rows[truth]
        pairs.append({"truth": classes[truth], "prediction": classes[pred], "pixels": int(off[truth, pred]), "share": float(share)})
    return pairs


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    if image.shape[0] <= height:
        return image
    width = max(round(image.shape[1] * height / image.shape[0]), 1)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST if image.ndim == 2 else cv2.INTER_AREA)


def _worst(model: Any, dataset: SegDataset, options: PredictOptions, scores: torch.Tensor, k: int, out: Path) -> list[dict[str, Any]]:
    """Pictures (image | ground truth | prediction | confidence) of the ``k`` images of the lowest
    own mIoU, predicted again with confidence, into ``out``; their rows for the page."""
    scored = [(float(s), i) for i, s in enumerate(scores.tolist()) if s == s]
    chosen = sorted(scored)[:k]
    rows = []
    for rank, (score, i) in enumerate(progress_bar(chosen, desc="report: worst images", unit="img"), 1):
        image, label = dataset[i]
        output = predict_outputs(model, image, replace(options, confidence=True))[0]
        pred, label = output.labels.numpy().astype(np.int32), label.astype(np.int32)  # OpenCV resizes no int64
        height = min(image.shape[0], 360)
        image_s, label_s, pred_s = _fit(image, height), _fit(label, height), _fit(pred, height)
        confidence = _fit(output.confidence.numpy(), height)
        panels = [
            ("image", image_s),
            ("ground truth", ground_truth(image_s, label_s, dataset.palette)),
            ("prediction", overlay(image_s, pred_s, dataset.classes, dataset.palette, legend=False)),
            ("confidence", heatmap(confidence)),
        ]
        picture = panel_row(panels, shown_classes(pred, label, dataset.palette), dataset.classes, dataset.palette)
        name = dataset.samples[i][0].relative_to(dataset.img_dir)
        file = f"worst/{rank:02d}-{name.stem}.jpg"
        write_image(out / file, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        rows.append({"file": file, "name": str(name), "mIoU": score, "width": picture.shape[1], "height": picture.shape[0]})
    return rows


def _number(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


def _class_table(metric: IoUMetric) -> str:
    values = area_metrics(metric.areas.numpy(), METRICS, metric.beta)
    labelled = metric.areas[3].numpy().astype(np.float64)
    share = 100 * labelled / max(labelled.sum(), 1)
    head = "".join(f'<th data-type="number" aria-sort="none"><button>{c}</button></th>' for c in (*COLUMNS, "pixels %"))
    lines = [
        f'<table id="classes"><thead><tr><th data-type="number" aria-sort="none"><button>#</button></th>'
        f'<th data-type="text" aria-sort="none"><button>class</button></th>{head}</tr></thead><tbody>'
    ]
    for i, name in enumerate(metric.class_names):
        cells = [100 * values[c][i] for c in COLUMNS] + [share[i]]
        tds = "".join(f'<td data-value="{v if v == v else ""}">{_number(v)}</td>' for v in cells)
        lines.append(f'<tr><td data-value="{i}">{i}</td><td data-value="{html.escape(name)}">{html.escape(name)}</td>{tds}</tr>')
    lines.append("</tbody></table>")
    return "\n".join(lines)


_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d2330;background:#f6f7f9;margin:0}
main{max-width:1200px;margin:0 auto;padding:24px 28px 64px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:36px 0 10px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
.sub{color:#5b6474;margin:0 0 18px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:24px;font-variant-numeric:tabular-nums}.card span{color:#5b6474;font-size:13px}
pre{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 14px;overflow:auto;font-size:13px}
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e7;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;border-bottom:1px solid #eef0f3;text-align:right}td:nth-child(2),th:nth-child(2){text-align:left}
thead th{position:sticky;top:0;background:#eef1f5}
th button{all:unset;cursor:pointer;font-weight:600}th button:focus-visible{outline:2px solid #3b6fd8}
th[aria-sort=ascending] button::after{content:" ▲"}th[aria-sort=descending] button::after{content:" ▼"}
tbody tr:hover{background:#f3f6fb}
.scroll{max-height:640px;overflow:auto;display:inline-block;border-radius:8px}
.facts td,.pairs td:nth-child(-n+2),.pairs th:nth-child(-n+2){text-align:left}.facts td:first-child{color:#5b6474;white-space:nowrap}
.wide{overflow:auto;background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:8px}
figure{margin:0 0 18px}figcaption{color:#5b6474;font-size:13px;margin-top:4px}
figure img,.wide img{display:block;max-width:100%;height:auto}
"""

_SORT = """
document.querySelectorAll("table#classes th button").forEach((button) => {
  button.addEventListener("click", () => {
    const th = button.parentElement, table = th.closest("table"), body = table.tBodies[0];
    const column = [...th.parentElement.children].indexOf(th), numeric = th.dataset.type === "number";
    const order = th.getAttribute("aria-sort") === "descending" ? "ascending" : "descending";
    table.querySelectorAll("th").forEach((other) => other.setAttribute("aria-sort", "none"));
    th.setAttribute("aria-sort", order);
    const sign = order === "ascending" ? 1 : -1;
    const key = (row) => row.children[column].dataset.value;
    const rows = [...body.rows].sort((a, b) => {
      if (!numeric) return sign * key(a).localeCompare(key(b));
      const x = key(a) === "" ? NaN : Number(key(a)), y = key(b) === "" ? NaN : Number(key(b));
      if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);  // no value: last either way
      return sign * (x - y);
    });
    body.append(...rows);
  });
});
"""


def write_report(
    out: str | Path,
    metric: IoUMetric,
    report: Report,
    *,
    model: Any,
    dataset: SegDataset,
    options: PredictOptions,
    worst: int = 12,
) -> Path:
    """Write ``out/index.html`` and its pictures (``confusion.png``, ``worst/``) for ``metric``
    (:func:`swinseg.engine.evaluate.evaluate` on ``dataset``); the ``worst`` images are predicted
    again by ``model`` with ``options`` for their confidence. Returns the page's path."""
    out = check_writable(Path(out), "report dir")
    classes = metric.class_names
    confusion = metric.confusion.numpy()
    write_image(out / "confusion.png", cv2.cvtColor(confusion_picture(confusion, classes), cv2.COLOR_RGB2BGR))
    pairs = most_confused(confusion, classes)
    rows = _worst(model, dataset, options, metric.image_scores, worst, out) if worst else []
    cards = "".join(f"<div class=card><b>{_number(v)}</b><span>{html.escape(k)}</span></div>" for k, v in report.summary.items())
    notes = f"<pre>{html.escape(chr(10).join(report.notes))}</pre>" if report.notes else ""
    facts = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in report.facts.items())
    confused = "".join(
        f"<tr><td>{html.escape(p['truth'])}</td><td>{html.escape(p['prediction'])}</td><td>{p['pixels']}</td><td>{p['share']:.1f}</td></tr>"
        for p in pairs
    )
    figures = "".join(
        f'<figure><img src="{html.escape(r["file"])}" width="{r["width"]}" height="{r["height"]}" alt="{html.escape(r["name"])}">'
        f"<figcaption>{n}. {html.escape(r['name'])}: mIoU {r['mIoU']:.2f} (image | ground truth | prediction | confidence)"
        f"</figcaption></figure>"
        for n, r in enumerate(rows, 1)
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(report.title)}</title><style>{_STYLE}</style></head>
<body><main>
<h1>{html.escape(report.title)}</h1>
<p class=sub>{html.escape(report.facts.get("images", ""))} images · {html.escape(report.facts.get("inference", ""))}</p>
<div class=cards>{cards}</div>
{notes}
<h2>Per class</h2>
<p class=sub>Percentages; click a column to sort. "pixels %" is the class's share of the labelled pixels; — marks a class
with no pixel to divide by.</p>
<div class=scroll>{_class_table(metric)}</div>
<h2>Confusion matrix</h2>
<p class=sub>Rows are the ground truth, columns the prediction; each row is divided by its pixels.</p>
<div class=wide><img src="confusion.png" alt="confusion matrix"></div>
<h3>Most confused pairs</h3>
<table class=pairs><thead><tr><th>ground truth</th><th>predicted as</th><th>pixels</th><th>% of the class</th></tr></thead>
<tbody>{confused or "<tr><td colspan=4>no confusion</td></tr>"}</tbody></table>
<h2>Worst images</h2>
<p class=sub>The {len(rows)} images of the lowest mIoU of their own (over the classes in their label or prediction).</p>
{figures}
<h2>Run</h2>
<table class=facts><tbody>{facts}</tbody></table>
</main>
<script>{_SORT}</script>
</body></html>
"""
    path = out / "index.html"
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    summary = {"summary": report.summary, "most_confused": pairs, "worst": rows, "facts": report.facts}
    atomic_write(out / "report.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=1)))
    return path
