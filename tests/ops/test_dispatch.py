"""The one dispatch: which kernels may run where, and README's table made from the declarations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from swinseg import ops
from swinseg.ops.attention import ATTENTION
from swinseg.ops.dispatch import CONTEXTS, OPERATIONS, Call

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_is_what_explain_prints() -> None:
    table = ops.explain()
    assert table in README.read_text(), "README's 'Speed' table differs from swinseg.ops.explain(): paste its output"
    assert len(table.splitlines()) == 2 + len(OPERATIONS)


def test_traced_calls_have_one_kernel_whatever_is_forced() -> None:
    """Under torch.compile or export the attention is sdpa even when bmm is forced: a traced graph
    holds standard operators only."""
    traced = Call(torch.device("cpu"), torch.float32, training=False, traced=True)
    assert [k.name for k in ATTENTION.eligible(traced)] == ["sdpa"]
    with ops.forced(attention="bmm"):
        assert ATTENTION.pick(traced, lambda: "N4", ()).name == "sdpa"
    assert ops.choices() == {}


def test_a_forced_kernel_that_may_not_run_there_gives_way(fresh) -> None:
    """onednn has no backward: forced, training still runs F.linear (and records nothing)."""
    layer = nn.Linear(8, 16)
    x = torch.randn(3, 8, requires_grad=True)
    with ops.forced(linear="onednn"):
        y = ops.linear(x, layer, gelu=True)
    y.sum().backward()
    assert x.grad is not None
    assert ops.choices() == {}


@pytest.mark.parametrize("column", list(CONTEXTS))
def test_every_cell_names_the_kernel_that_runs_there(fresh, column: str) -> None:
    """The table against the dispatch itself: where a cell is not a timed choice, the kernel that
    ``pick`` returns for that context (nothing forced, nothing recorded) is the one it names."""
    call = CONTEXTS[column]
    for op in OPERATIONS.values():
        cell = op.explain(call)
        if cell.startswith("timed"):
            assert call.timeable and op.per is not None, (op.name, column)
            continue
        kernel = op.pick(call, lambda: "probe", ())
        assert f"`{kernel.name}`" in cell, (op.name, column, cell, kernel.name)
