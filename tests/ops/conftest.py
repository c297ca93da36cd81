"""A kernel chooser in its first state, for tests that look at what it chose."""

from __future__ import annotations

import pytest

from swinseg import ops
from swinseg.ops import tuning


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A process that has chosen nothing yet, with an empty per-machine file."""
    monkeypatch.setenv("SWINSEG_HOME", str(tmp_path))
    monkeypatch.delenv(ops.ENV, raising=False)
    monkeypatch.setattr(tuning, "STATE", tuning.KernelState())
    return tmp_path
