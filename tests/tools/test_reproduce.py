"""``swinseg test`` beside a zoo entry's published mIoU, and the doctor when they differ: on a
small synthetic zoo entry whose published number is what its checkpoint scores."""

from __future__ import annotations

import re

from swinseg.cli import main


def _measured(out: str) -> float:
    return float(re.search(r"measured ([\d.]+)", out).group(1))


def test_published_beside_measured_and_no_doctor_when_they_agree(entry, capsys):
    spec, config, checkpoint = entry
    spec.meta["mIoU"] = 0.0
    assert main(["test", config, checkpoint, "--tolerance", "1000"]) == 0
    measured = _measured(capsys.readouterr().out)
    spec.meta["mIoU"] = measured
    assert main(["test", config, checkpoint]) == 0
    out = capsys.readouterr().out
    assert f"published mIoU {measured:.2f}, measured {measured:.2f}: +0.00" in out and "doctor" not in out


def test_the_doctor_names_what_differs_from_the_zoo(entry, capsys):
    spec, config, checkpoint = entry
    spec.meta["mIoU"] = 99.0
    assert main(["test", config, checkpoint, "--mode", "slide", "--crop", "32", "--stride", "21"]) == 0
    out = capsys.readouterr().out
    assert "reproduction doctor (the difference is beyond 0.5)" in out
    assert re.search(r"\[!!\] test mode: slide, crop \[32, 32\].*the zoo used", out)
    assert "[ok] test scale: [128, 96]" in out and "[ok] checkpoint classes" in out and "[ok] annotation folder" in out
    assert re.search(r"\[(ok|!!)\] channel order: mIoU on the first images", out)
    assert "[ok] labels: reduce_zero_label=True" in out


def test_the_doctor_flags_a_label_setup_that_does_not_fit(entry, capsys):
    spec, config, checkpoint = entry
    spec.meta["mIoU"] = 99.0
    assert main(["test", config, checkpoint, "--set", "data.reduce_zero_label=false", "data.classes=null"]) == 1
    # the synthetic labels run 1..7: without the reduction 7 is beyond 7 classes, and the test stops there
    assert "outside 0..6" in capsys.readouterr().err
    assert main(["test", config, checkpoint, "--set", "data.classes=[a, b, c, d, e, f, g]"]) == 0
    assert "[!!] checkpoint classes" in capsys.readouterr().out
