"""One run per work dir: a second train on it stops at once naming the holder; a lock left by a
killed run is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from swinseg.cli import main
from swinseg.tools.synthetic import write_dataset

from ..helpers import DEMO_CONFIG, TINY_OVERRIDES

HOLD = """
import sys, time
from pathlib import Path
from swinseg.files import exclusive
with exclusive(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(120)
"""


def _hold(work) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(work)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_run_on_a_held_work_dir_stops_naming_the_holder(tmp_path, capsys):
    root = write_dataset(tmp_path / "data", train=2, val=1, size=(48, 64))
    work = tmp_path / "work"
    holder = _hold(work)
    try:
        args = ["train", DEMO_CONFIG, "--work-dir", str(work), "--set", f"data.root={root}", *TINY_OVERRIDES, "schedule.max_iters=4"]
        start = time.perf_counter()
        assert main(args) == 1
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.startswith(f"error: {work} is in use by PID {holder.pid} (swinseg train, since ")
        assert not (work / "iter_4.pth").exists() and time.perf_counter() - start < 60
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the holder was killed: its lock file stays, naming a dead process, and the next run takes it over
    assert f"PID {holder.pid}" in (work / ".lock").read_text()
    assert main(args) == 0 and (work / "iter_4.pth").is_file()
    assert (work / ".lock").read_text() == ""  # released at the end of the run
    assert os.path.getsize(work / ".lock") == 0
