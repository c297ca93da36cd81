"""The README's examples run as written.

Python blocks run top to bottom in one namespace, in a folder holding the files they name. Two
substitutions keep them offline and quick: ``pretrained=True`` becomes random weights (there is
no network), and the models it named shrink to a few channels (same code paths, same output
shapes). The shapes the comments promise are checked. Every ``swinseg`` command line in the bash
blocks is parsed by the real argument parser, so a renamed subcommand or flag fails here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import swinseg
from swinseg.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
SHRINK = {
    "segmentor": "backbone=dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)), decode_head=dict(channels=16), "
    "auxiliary_head=dict(channels=8), test_pipeline=dict(scale=(128, 48))",
    "classifier": "embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)",
}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def _offline(code: str) -> str:
    def shrink(match: re.Match) -> str:
        kind = "classifier" if "_224" in match.group(1) or "_384" in match.group(1) else "segmentor"
        return f"create_model({match.group(1)}, pretrained=False, {SHRINK[kind]})"

    return re.sub(r"create_model\(([^()]*?),\s*pretrained=True\)", shrink, code)


@pytest.fixture
def readme_folder(tmp_path, monkeypatch):
    """The files the examples name: a photo, and the official Swin-T ImageNet file."""
    monkeypatch.chdir(tmp_path)
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    cv2.imwrite("image.jpg", image)
    official = swinseg.create_model("swin_tiny_patch4_window7_224", pretrained=False)
    swinseg.save_checkpoint(official, tmp_path / "official.safetensors")
    swinseg.convert_checkpoint(tmp_path / "official.safetensors", "swin_tiny_patch4_window7_224.pth", to="official")
    return tmp_path


def test_the_python_examples_run_and_give_the_promised_shapes(readme_folder):
    blocks = _blocks("python")
    assert len(blocks) >= 4
    space: dict = {}
    for code in blocks:
        exec(compile(_offline(code), str(README), "exec"), space)  # noqa: S102  (the README's own code)
    assert space["labels"].shape == (40, 60) and space["labels"].dtype == torch.int64
    out = space["out"]
    assert out.labels.shape == out.confidence.shape == out.entropy.shape == (40, 60)
    assert out.topk_classes.shape == (3, 40, 60) and torch.equal(out.topk_classes[0], out.labels)
    assert space["logits"].shape == (1, 1000)
    feats = space["feats"]
    assert feats[0].shape == (1, 96, 128, 171) and feats[-1].shape == (1, 768, 16, 22)
    assert isinstance(space["again"], swinseg.SwinTransformer)
    assert space["runtime"].backend == "onnxruntime" and (space["same"] == space["labels"]).all()


def _command_lines() -> list[list[str]]:
    lines = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #")[0], comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # environment settings
                words = words[1:]
            if words[:1] == [".venv/bin/swinseg"]:
                words[0] = "swinseg"
            if "-m" in words and "swinseg.cli" in words:
                words = ["swinseg", *words[words.index("swinseg.cli") + 1 :]]
            if words[:1] == ["swinseg"] and len(words) > 1:
                lines.append(words[1:])
    return lines


def test_every_command_line_in_the_readme_parses():
    lines = _command_lines()
    assert len(lines) >= 30
    parser = build_parser()
    subcommands = set(parser._subparsers._group_actions[0].choices)
    for words in lines:
        if "|" in words[0]:  # "train|test|config ..." names several
            assert set(words[0].split("|")) <= subcommands, words
            continue
        assert words[0] in subcommands, words
        sub = parser._subparsers._group_actions[0].choices[words[0]]
        flags = {s for action in sub._actions for s in action.option_strings}
        for word in words[1:]:
            flag = word.split("=")[0].strip("[]")
            if flag.startswith("--"):
                assert flag in flags, f"README: 'swinseg {' '.join(words)}': {words[0]} has no {flag}"
