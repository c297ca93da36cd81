"""The kernel chooser: precedence (forced, restored, made before, timed, default), the
environment variable, the per-machine file, and that timing leaves no trace in the results."""

from __future__ import annotations

import json
import time

import pytest
import torch
import torch.nn.functional as F

from swinseg import ops
from swinseg.ops import conv as conv_ops
from swinseg.ops import tuning


def _sleeper(seconds: float, calls: list[str], name: str):
    def run() -> None:
        calls.append(name)
        time.sleep(seconds)

    return run


def test_timing_picks_the_fastest_and_keeps_it_for_the_machine(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    candidates = {"winograd": _sleeper(0.02, calls, "winograd"), "direct": _sleeper(0.0, calls, "direct")}
    cpu = torch.device("cpu")
    assert tuning.choose("conv3x3", "C1", torch.float32, cpu, candidates, default="winograd") == "direct"
    assert calls.count("winograd") == calls.count("direct") == 1 + tuning.ROUNDS
    key = "conv3x3/cpu/float32/C1"
    assert ops.choices() == {key: "direct"}
    saved = json.loads((fresh / "kernels" / f"{ops.signature(cpu)}-r{tuning.REVISION}.json").read_text())
    assert saved == {key: "direct"}

    monkeypatch.setattr(tuning, "STATE", tuning.KernelState())  # a new process on the same machine: no timing
    calls.clear()
    assert tuning.choose("conv3x3", "C1", torch.float32, cpu, candidates, default="winograd") == "direct"
    assert calls == []


def test_the_default_stays_unless_another_is_clearly_faster(fresh) -> None:
    calls: list[str] = []
    same = {"winograd": _sleeper(0.01, calls, "winograd"), "direct": _sleeper(0.01, calls, "direct")}
    assert tuning.choose("conv3x3", "C2", torch.float32, torch.device("cpu"), same, default="winograd") == "winograd"


def test_forced_restored_and_tune_off_take_precedence(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    candidates = {"winograd": _sleeper(0.0, calls, "winograd"), "direct": _sleeper(0.02, calls, "direct")}
    cpu = torch.device("cpu")
    ops.restore({"conv3x3/cpu/float32/C3": "direct"})
    assert tuning.choose("conv3x3", "C3", torch.float32, cpu, candidates, default="winograd") == "direct"
    with ops.forced(conv3x3="winograd"):
        assert tuning.choose("conv3x3", "C3", torch.float32, cpu, candidates, default="direct") == "winograd"
    assert ops.choices()["conv3x3/cpu/float32/C3"] == "direct"  # the block's force is undone
    ops.configure(tune=False)
    assert tuning.choose("conv3x3", "C4", torch.float32, cpu, candidates, default="direct") == "direct"
    assert calls == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("attention=flash", "choose one of: sdpa, bmm, bmm_f32"),
        ("matmul=fast", "operations: attention, chunk, conv3x3"),
        ("tune=maybe", "tune must be 'on' or 'off'"),
        ("sdpa", "expected OP=KERNEL"),
    ],
)
def test_the_environment_variable_is_checked(fresh, monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv(ops.ENV, value)
    with pytest.raises(ValueError, match=message):
        ops.configure()


def test_the_environment_variable_forces_and_turns_timing_off(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ops.ENV, "attention=bmm, tune=off")
    q, k, v = torch.randn(3, 2, 4, 2, 9, 8).unbind(0)
    ops.window_attention(q, k, v, torch.zeros(1, 2, 9, 9), 0.35)
    x = torch.randn(1, 3, 64, 64)
    conv_ops.conv3x3(x, torch.randn(2, 3, 3, 3))
    assert ops.choices() == {"attention/cpu/float32/N9-d8-h2-w4": "bmm", "conv3x3/cpu/float32/C3-K2-px8192": "winograd"}


def test_choices_are_per_image_not_per_batch_and_compiled_graphs_use_conv2d(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    w = torch.randn(4, 3, 3, 3)
    for batch in (1, 3):
        conv_ops.conv3x3(torch.randn(batch, 3, 40, 50), w)
    assert list(ops.choices()) == ["conv3x3/cpu/float32/C3-K4-px2048"]
    monkeypatch.setattr(conv_ops, "winograd_conv3x3", lambda *a: pytest.fail("Winograd in a traced graph"))
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    x = torch.randn(1, 3, 40, 50)
    torch.testing.assert_close(conv_ops.conv3x3(x, w), F.conv2d(x, w, padding=1), rtol=0, atol=0)


def test_timing_draws_no_random_numbers(fresh) -> None:
    """Attention dropout while the kernels are timed: the random stream is where it would be
    without the timing, so a run is reproducible whether or not it timed anything."""
    q, k, v = torch.randn(3, 1, 4, 2, 9, 8).unbind(0)
    mask = torch.zeros(1, 2, 9, 9)
    torch.manual_seed(0)
    ops.window_attention(q, k, v, mask, 0.35, dropout=0.5)  # times, then runs the chosen kernel
    after_timing = torch.rand(4)
    torch.manual_seed(0)
    ops.window_attention(q, k, v, mask, 0.35, dropout=0.5)  # chosen already
    torch.testing.assert_close(torch.rand(4), after_timing, rtol=0, atol=0)


def test_an_unwritable_home_warns_and_keeps_the_choice_in_the_process(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = fresh / "file"
    blocker.write_text("")
    monkeypatch.setenv("SWINSEG_HOME", str(blocker))  # a file where the folder should be
    calls: list[str] = []
    candidates = {"winograd": _sleeper(0.02, calls, "winograd"), "direct": _sleeper(0.0, calls, "direct")}
    with pytest.warns(UserWarning, match="kernel choices are not kept across runs"):
        tuning.choose("conv3x3", "C5", torch.float32, torch.device("cpu"), candidates, default="winograd")
    assert ops.choices() == {"conv3x3/cpu/float32/C5": "direct"}


def test_no_timing_off_the_cpu_nor_in_one_of_several_processes(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU would time again for every new window count and each DDP rank on its own: there,
    and in any process of a torchrun job, the default runs unless a choice was forced."""
    calls: list[str] = []
    candidates = {"sdpa": _sleeper(0.02, calls, "sdpa"), "bmm": _sleeper(0.0, calls, "bmm")}
    assert tuning.choose("attention", "N49-w4", torch.float32, torch.device("cuda"), candidates, default="sdpa") == "sdpa"
    assert tuning.choose("attention", "N49-w8", torch.float32, torch.device("cuda"), candidates, default="sdpa") == "sdpa"
    monkeypatch.setattr(tuning, "_several_processes", lambda: True)
    assert tuning.choose("attention", "N49-w4", torch.float32, torch.device("cpu"), candidates, default="sdpa") == "sdpa"
    assert calls == []
    with ops.forced(attention="bmm"):
        assert tuning.choose("attention", "N49-w16", torch.float32, torch.device("cuda"), candidates, default="sdpa") == "bmm"


def test_chunk_choices_are_keyed_per_image() -> None:
    from swinseg.models.swin import SwinBlock

    block = SwinBlock(8, 1, 7, 4.0, True, None, 0.0, 0.0, 0.0, with_cp=False).eval()
    with ops.forced(chunk="whole"), torch.no_grad():
        for batch in (1, 4):
            block(torch.zeros(batch, 16, 20, 8), 7, 0, None)
        assert [k for k in ops.choices() if k.startswith("chunk/")] == ["chunk/cpu/float32/C8-tokens512"]
