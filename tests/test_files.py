"""Full disks and unwritable folders, injected for real: a child process whose file size limit
(``RLIMIT_FSIZE``, with SIGXFSZ ignored so that a write fails with EFBIG instead of killing it)
is below what it writes. Each write stops with one line naming the file, nothing half-written
is left or pointed at, and a run continues once there is room. Unwritable or missing work and
output folders are reported before any work starts."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from swinseg.engine.checkpoints import latest_checkpoint, load_state
from swinseg.files import WriteError, atomic_write, check_writable
from swinseg.tools.synthetic import write_dataset
from swinseg.weights import save_checkpoint
from tests.helpers import DEMO_CONFIG, TINY_OVERRIDES, tiny_segmentor

pytestmark = pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE")

LIMIT = 1 << 20  # above every log and config file, below a training checkpoint of the tiny model


def _limited(limit: int):
    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return setup


def _run(args: list[str], tmp_path: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SWINSEG_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "swinseg.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        preexec_fn=_limited(limit) if limit else None,
    )


def _error_line(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 1, run.stderr[-3000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    return lines[0]


def _train(root: Path, work: Path, max_iters: int, tmp_path: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    overrides = [f"data.root={root}", *TINY_OVERRIDES, f"schedule.max_iters={max_iters}", "train.checkpoint_interval=4"]
    return _run(["train", DEMO_CONFIG, "--work-dir", str(work), "--resume", "--set", *overrides], tmp_path, limit)


def test_a_checkpoint_that_does_not_fit_stops_the_run_and_a_resume_continues(tmp_path):
    root = write_dataset(tmp_path / "data", train=4, val=2, size=(48, 64))
    work = tmp_path / "work"
    assert _train(root, work, 4, tmp_path).returncode == 0
    first = latest_checkpoint(work)
    assert first == work / "iter_4.pth" and first.stat().st_size > LIMIT

    line = _error_line(_train(root, work, 8, tmp_path, limit=LIMIT))
    assert line.startswith(f"error: cannot write {work / 'iter_8.pth'}: ") and f"files are limited to {LIMIT} bytes" in line
    assert line.endswith(f"the last checkpoint, {first}, is intact: free space, then resume")
    assert latest_checkpoint(work) == first and load_state(first)["iteration"] == 4
    assert not list(work.glob(".*.tmp")) and not (work / "iter_8.pth").exists()

    resumed = _train(root, work, 8, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {first}" in resumed.stdout
    assert load_state(latest_checkpoint(work))["iteration"] == 8


def test_a_log_that_does_not_fit_names_the_file(tmp_path):
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from swinseg.engine.logger import TrainLogger
        logger = TrainLogger(Path({str(tmp_path)!r}), 10**6, 0, 1, progress=False)
        for i in range(1, 10**6):
            logger.update({{"loss": 1.0, "lr": 0.1, "time": 0.1}})
            logger.log(i, __import__("torch").device("cpu"))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, preexec_fn=_limited(4096))
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("swinseg.files.WriteError: cannot write ") and ": File too large; files are limited to 4096" in last
    assert Path(last.split("cannot write ")[1].split(":")[0]) in (tmp_path / "scalars.jsonl", tmp_path / "tensorboard")
    assert "Exception in thread" not in run.stderr  # TensorBoard's writer thread does not print its own traceback


def test_a_prediction_that_does_not_fit_names_the_file_and_a_rerun_completes(tmp_path):
    root = write_dataset(tmp_path / "data", train=1, val=3, size=(96, 128))
    images = sorted((root / "images" / "validation").glob("*"))
    out = tmp_path / "out"
    checkpoint = save_checkpoint(tiny_segmentor(), tmp_path / "model.safetensors")
    args = ["predict", str(checkpoint), *map(str, images), "--out", str(out)]
    line = _error_line(_run(args, tmp_path, limit=2048))
    assert line.startswith(f"error: cannot write {out}/") and ": File too large; files are limited to 2048 bytes" in line
    assert not list(out.glob(".*.tmp"))
    complete = _run([*args, "--skip-existing"], tmp_path)
    assert complete.returncode == 0, complete.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f"{p.stem}.png" for p in images)


@pytest.mark.parametrize("where", ["under a file", "read-only"])
def test_unwritable_work_and_output_dirs_are_reported_before_any_work(tmp_path, where):
    if where == "under a file":
        (tmp_path / "file").write_text("x")
        folder = tmp_path / "file" / "sub"
    else:
        folder = Path("/sys/kernel")  # sysfs refuses new files, even to root
        try:
            check_writable(folder, "probe")
            pytest.skip("/sys/kernel is writable here")
        except WriteError:
            pass
    train = _run(["train", DEMO_CONFIG, "--work-dir", str(folder), "--set", "data.root=/nonexistent"], tmp_path)
    assert _error_line(train).startswith(f"error: work dir {folder} is not writable: ")
    checkpoint = save_checkpoint(tiny_segmentor(), tmp_path / "model.safetensors")
    predict = _run(["predict", str(checkpoint), "/nonexistent.png", "--out", str(folder)], tmp_path)
    assert _error_line(predict).startswith(f"error: output dir {folder} is not writable: ")


def test_atomic_write_names_the_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"w": torch.zeros(3)}, path)
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        import torch
        from swinseg.files import atomic_write
        atomic_write(Path({str(path)!r}), lambda tmp: torch.save({{"w": torch.ones(10**6)}}, tmp))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, preexec_fn=_limited(1 << 16))
    assert f"WriteError: cannot write {path}: " in run.stderr.strip().splitlines()[-1]
    assert torch.equal(torch.load(path)["w"], torch.zeros(3)) and [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(KeyError):  # not a disk failure: passed on as it is
        atomic_write(path, lambda tmp: {}["missing"])


def test_every_written_file_gets_the_usual_permissions(tmp_path):
    """.safetensors files were written 0600 while .pth files got 0644."""
    import os
    import stat

    import swinseg

    from .helpers import tiny_segmentor

    mask = os.umask(0)
    os.umask(mask)
    model = tiny_segmentor(3)
    for name in ("m.safetensors", "m.pth"):
        path = swinseg.save_checkpoint(model, tmp_path / name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, name
