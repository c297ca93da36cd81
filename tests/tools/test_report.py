"""``swinseg test --report DIR``: the page in a real browser (every picture loads, no console
error, the table sorts), its numbers those of the metrics, and nothing written outside DIR."""

from __future__ import annotations

import json

import numpy as np
import pytest

from swinseg.cli import main
from swinseg.tools.report import confusion_picture, most_confused

from ..helpers import chromium


def _tree(root):
    return {p.relative_to(root) for p in root.rglob("*")}


def test_the_report_in_chromium(entry, tmp_path, monkeypatch, capsys):
    spec, config, checkpoint = entry
    spec.meta["mIoU"] = 99.0  # far from what random weights score: the doctor's lines go in the report
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    report = tmp_path / "report"
    args = ["test", config, checkpoint, "--report", str(report), "--worst", "3", "--metrics", "mIoU", "mDice", "--out", "m.json"]
    assert main(args) == 0
    assert f"wrote {report / 'index.html'}" in capsys.readouterr().out
    assert {p.parts[0] for p in _tree(tmp_path) - before} == {"report", "m.json"}
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert list(metrics["per_class"]) == ["IoU", "Acc", "Dice"]
    summary = json.loads((report / "report.json").read_text())
    assert len(summary["worst"]) == 3 and [w["mIoU"] for w in summary["worst"]] == sorted(w["mIoU"] for w in summary["worst"])

    with chromium() as driver:
        driver.get((report / "index.html").as_uri())
        images = driver.execute_script("return [...document.images].map((i) => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        assert len(images) == 1 + 3 and all(complete and width > 0 for _, complete, width in images), images
        text = driver.find_element("tag name", "body").text
        assert "published mIoU" in text and "reproduction doctor" in text and "Most confused pairs" in text

        def column(name):
            index = driver.execute_script(
                "return [...document.querySelectorAll('#classes th')].findIndex((th) => th.textContent.trim().startsWith(arguments[0]))",
                name,
            )
            cells = driver.execute_script(
                "return [...document.querySelectorAll('#classes tbody tr')].map((r) => r.children[arguments[0]].dataset.value)", index
            )
            return index, cells

        def click(name):
            index, _ = column(name)
            driver.find_elements("css selector", "#classes th button")[index].click()

        _, ious = column("IoU")
        page = [float(v) if v else np.nan for v in ious]
        assert np.allclose(page, metrics["per_class"]["IoU"], atol=0.006, equal_nan=True)  # the page shows what the metric gives
        click("IoU")
        _, after = column("IoU")
        numbers = [float(v) for v in after if v]
        assert numbers == sorted(numbers, reverse=True) and all(after[: len(numbers)])  # descending, no-value rows last
        click("IoU")
        _, after = column("IoU")
        assert [float(v) for v in after if v] == sorted(numbers)
        click("class")
        _, names = column("class")
        assert names == sorted(names, reverse=True)
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors


def test_most_confused_pairs_by_hand():
    confusion = np.array([[5, 3, 0], [1, 7, 4], [0, 0, 0]])
    pairs = most_confused(confusion, ["a", "b", "c"], k=10)
    assert [(p["truth"], p["prediction"], p["pixels"]) for p in pairs] == [("b", "c", 4), ("a", "b", 3), ("b", "a", 1)]
    assert pairs[0]["share"] == pytest.approx(100 * 4 / 12)


def test_the_confusion_picture_keeps_150_names_readable():
    classes = [f"class number {i}" for i in range(150)]
    picture = confusion_picture(np.random.default_rng(0).integers(0, 50, (150, 150)), classes)
    assert picture.dtype == np.uint8 and picture.shape[0] >= 150 * 12 and picture.shape[1] >= 150 * 12
