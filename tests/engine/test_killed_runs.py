"""A CPU training run killed with SIGKILL again and again (during steps, while a checkpoint is
being written, during validation) and resumed each time ends with the weights of a run that was
never interrupted, and no checkpoint on disk is ever unreadable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from swinseg.engine.checkpoints import latest_checkpoint, load_state
from swinseg.tools.synthetic import write_dataset
from swinseg.weights.io import read_checkpoint
from tests.helpers import DEMO_CONFIG, TINY_OVERRIDES

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")

SCHEDULE = ["schedule.max_iters=24", "train.checkpoint_interval=2", "train.val_interval=4", "train.max_keep_ckpts=2"]


def _train(root: Path, work: Path) -> subprocess.Popen:
    overrides = [f"data.root={root}", *TINY_OVERRIDES, *SCHEDULE]
    command = [sys.executable, "-m", "swinseg.cli", "train", DEMO_CONFIG, "--work-dir", str(work), "--resume", "--set", *overrides]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONHASHSEED": "0"})


def _wait_for(process: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """Poll until ``ready()`` or the process ends."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.001)


def _assert_every_checkpoint_readable(work: Path) -> None:
    for path in work.glob("*.pth"):
        obj, _ = read_checkpoint(path)  # raises on a truncated or corrupt file
        assert obj["state_dict"], path
    latest = latest_checkpoint(work)
    if latest is not None:
        assert load_state(latest)["iteration"] == int(latest.stem.split("_")[1])


def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path):
    root = write_dataset(tmp_path / "data", train=6, val=2, size=(48, 64))
    straight = _train(root, tmp_path / "straight")
    assert straight.wait(timeout=600) == 0, straight.stderr.read().decode()

    work = tmp_path / "killed"
    rng = np.random.default_rng(0)

    def newest_iteration() -> int:
        latest = latest_checkpoint(work)
        return int(latest.stem.split("_")[1]) if latest else 0

    def logged() -> int:
        scalars = work / "scalars.jsonl"
        return len(scalars.read_text().splitlines()) if scalars.exists() else 0

    # each trigger is evaluated against the state when the resumed process started
    moments = {
        "during a step": lambda start: logged() > start["logged"],
        "while writing a checkpoint": lambda start: any(p.stat().st_mtime > start["time"] for p in work.glob(".iter_*.tmp")),
        "during validation": lambda start: newest_iteration() > start["iteration"] and newest_iteration() % 4 == 0,
    }
    killed = []
    for name in [*moments, *moments]:
        start = {"logged": logged(), "time": time.time(), "iteration": newest_iteration()}
        process = _train(root, work)
        _wait_for(process, lambda name=name, start=start: moments[name](start))
        if name == "during a step":
            time.sleep(rng.uniform(0.0, 0.03))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed.append(name)
        process.wait()
        _assert_every_checkpoint_readable(work)
    assert len(killed) >= 5 and set(killed) == set(moments)
    final = _train(root, work)
    assert final.wait(timeout=600) == 0, final.stderr.read().decode()
    _assert_every_checkpoint_readable(work)
    assert not list(work.glob(".*.tmp"))  # partial writes of killed runs are cleaned up

    a, b = load_state(tmp_path / "straight/iter_24.pth"), load_state(work / "iter_24.pth")
    assert a["iteration"] == b["iteration"] == 24
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # a validation cut short by a kill ran again on resume: the same records and best model
    assert (work / "best.json").read_text() == (tmp_path / "straight/best.json").read_text()
    records = lambda w: [(r["mode"], r["iter"]) for r in map(json.loads, (w / "scalars.jsonl").read_text().splitlines())]  # noqa: E731
    assert records(work) == records(tmp_path / "straight")
