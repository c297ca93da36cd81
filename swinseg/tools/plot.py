"""``swinseg plot``: training curves (losses, learning rate, validation mIoU, mDice...) from a work
directory's ``scalars.jsonl``, drawn with matplotlib."""

from __future__ import annotations

from pathlib import Path

from ..engine.logger import read_scalars
from ..files import atomic_write

__all__ = ["plot_curves"]


def plot_curves(work_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw ``work_dir/scalars.jsonl`` into a PNG (default ``work_dir/curves.png``); returns its path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("swinseg plot needs matplotlib: pip install 'swinseg[train]'") from None
    work_dir = Path(work_dir)
    scalars = work_dir / "scalars.jsonl"
    if not scalars.is_file():
        raise FileNotFoundError(f"{scalars} does not exist (is {work_dir} a training work dir?)")
    records = read_scalars(scalars)
    train = [r for r in records if r.get("mode") == "train"]
    val = [r for r in records if r.get("mode") == "val"]
    if not train:
        raise ValueError(f"{scalars} holds no training records yet")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    steps = [r["iter"] for r in train]
    for key in [k for k in train[-1] if k.endswith("loss_ce") or k == "loss"]:
        axes[0].plot(steps, [r.get(key) for r in train], label=key)
    axes[0].set(title="training loss", xlabel="iteration")
    axes[0].legend()
    axes[1].plot(steps, [r["lr"] for r in train])
    axes[1].set(title="learning rate", xlabel="iteration")
    axes[1].ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    summary = dict.fromkeys(k for r in val for k in r if k == "aAcc" or (k.startswith("m") and k != "mode"))
    for key in summary:  # mIoU, mAcc, aAcc, and mDice, mFscore... as test.metrics asked
        axes[2].plot([r["iter"] for r in val], [r.get(key) for r in val], marker="o", label=key)
    axes[2].set(title="validation (%)", xlabel="iteration")
    if val:
        axes[2].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    path = Path(out) if out else work_dir / "curves.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100), keep_suffix=True)
    plt.close(fig)
    return path
