"""Native files carry a SHA-256 of their tensors and class names; a changed byte is an error naming
the file, and the fuzz of byte flips, truncations and extensions never loads other weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import swinseg
from swinseg.engine.checkpoints import load_state, save_state
from swinseg.weights.io import DIGEST_KEY, read_checkpoint

from ..helpers import randomize_, tiny_segmentor

ROOT = Path(__file__).resolve().parents[2]


def _flip_inside(path: Path, tensor: torch.Tensor) -> None:
    """Flip one bit in the middle of ``tensor``'s bytes as the file stores them."""
    data = bytearray(path.read_bytes())
    raw = tensor.contiguous().view(torch.uint8).numpy().tobytes()
    at = bytes(data).find(raw)
    assert at > 0 and bytes(data).find(raw, at + 1) < 0
    data[at + len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_flipped_bit_in_a_weight_is_an_error_naming_the_file(tmp_path, suffix):
    model = randomize_(tiny_segmentor())
    path = swinseg.save_checkpoint(model, tmp_path / f"model{suffix}")
    assert len(read_checkpoint(path)[1][DIGEST_KEY]) == 64
    assert torch.equal(swinseg.create_model(str(path)).state_dict()["decode_head.conv_seg.weight"], model.decode_head.conv_seg.weight)
    _flip_inside(path, model.decode_head.conv_seg.weight.detach())
    with pytest.raises(ValueError, match=f"^{path} is corrupt: its tensors or metadata no longer match the SHA-256"):
        swinseg.create_model(str(path))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_changed_class_name_is_an_error(tmp_path, suffix):
    model = tiny_segmentor(num_classes=3)
    model.dataset_meta = {"classes": ["sky", "road", "tree"], "palette": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}
    path = swinseg.save_checkpoint(model, tmp_path / f"model{suffix}")
    path.write_bytes(path.read_bytes().replace(b"road", b"roaf"))
    with pytest.raises(ValueError, match="is corrupt"):
        swinseg.create_model(str(path))


def test_a_training_checkpoint_with_a_flipped_optimizer_byte_is_refused(tmp_path):
    model = tiny_segmentor()
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(1, 3, 64, 64)).sum().backward()
    optimizer.step()
    state = {"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": 1, "meta": {}}
    path = save_state(tmp_path, 1, state)
    assert load_state(path)["iteration"] == 1
    exp_avg = optimizer.state_dict()["state"][0]["exp_avg"]
    _flip_inside(path, exp_avg)
    with pytest.raises(ValueError, match=f"{path} is corrupt"):
        load_state(path)


def test_files_without_a_digest_still_load(tmp_path):
    model = randomize_(tiny_segmentor())
    path = tmp_path / "older.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"format": "swinseg", "config": model.config}}, path)
    loaded = swinseg.create_model(str(path))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_fuzzed_files_load_the_original_weights_or_fail_in_one_line(tmp_path):
    out = tmp_path / "fuzz.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/fuzz_checkpoints.py"), "--cases", "500", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["cases"] == 1000 and not report["failures"]
    flips = [counts for row, counts in report["by_format_and_kind"].items() if row.endswith("flip")]
    assert sum(c.get("one-line error naming the file", 0) for c in flips) > 300  # the flips were caught, not missed
