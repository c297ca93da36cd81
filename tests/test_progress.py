"""Progress off a terminal: plain lines in tqdm's format, a heartbeat for steps without a count."""

from __future__ import annotations

import io
import time

from swinseg.progress import Lines, progress_bar, working


def test_lines_print_the_count_and_stay_silent_for_short_work():
    out = io.StringIO()
    for _ in Lines(range(4), desc="test", unit="img", stream=out, interval=0):
        pass
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("test: 1/4 img (25%)") and lines[-1].startswith("test: 4/4 img (100%)")
    assert len(lines) == 4  # the last count once: close() adds nothing when it was just printed

    quiet = io.StringIO()
    bar = Lines(total=10, desc="fast", stream=quiet, interval=60)
    bar.update(10)
    bar.close()
    assert quiet.getvalue() == ""


def test_lines_without_a_total_and_with_byte_units():
    out = io.StringIO()
    bar = Lines(desc="weights.pth", unit="B", unit_scale=True, stream=out, interval=0)
    bar.update(12_345_678)
    assert out.getvalue().startswith("weights.pth: 12.3MB")
    bar.reset(total=20_000_000)
    bar.update(5_000_000)
    assert "5.00M/20.0M" in out.getvalue().splitlines()[-1] and "(25%)" in out.getvalue()


def test_progress_bar_off_a_terminal_is_lines_unless_the_caller_logs_itself(capsys):
    assert isinstance(progress_bar(range(3), desc="x"), Lines)  # pytest's stderr is not a terminal
    assert not isinstance(progress_bar(range(3), desc="x", lines=False), Lines)
    assert not isinstance(progress_bar(range(3), desc="x", enabled=False), Lines)


def test_working_says_it_started_and_beats_while_it_lasts():
    out = io.StringIO()
    with working("exporting m.onnx", stream=out, interval=0.05):
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert lines[0] == "exporting m.onnx ..."
    assert len(lines) >= 3 and all(line.startswith("exporting m.onnx: ") and line.endswith(" s") for line in lines[1:])
    count = len(lines)
    time.sleep(0.15)
    assert len(out.getvalue().splitlines()) == count  # the heartbeat ended with the block
