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
    for name in ("_forced", "_restored", "_chosen", "_on_disk"):
        monkeypatch.setattr(tuning, name, {})
    monkeypatch.setattr(tuning, "_tune", [])
    return tmp_path
