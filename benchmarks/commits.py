"""Two source trees of swinseg side by side: the same cases of ``benchmarks/peers.py`` (swinseg
only) timed in alternating fresh processes, one per tree per round, so that the host's drift hits
both alike. For a refactoring: "is the speed unchanged within noise?".

    git worktree add /tmp/before HEAD~5
    python benchmarks/commits.py /tmp/before . --cases segment-512 train --rounds 4 --out result.json

Each process builds the case, runs it once untimed, then ``--calls`` timed calls and reports
their minimum. Both trees share one ``SWINSEG_HOME``, so they use the same kernel choices kept
for this machine where their kernel keys agree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
sys.path[:0] = [{tree!r}, {tree!r} + "/benchmarks"]
import torch
torch.set_num_threads({threads})
torch.manual_seed(0)
from peers import CASES, Target
run = CASES[{case!r}]().build("swinseg", Target(torch.device("cpu")))
run()
times = []
for _ in range({calls}):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
print(json.dumps(min(times)))
"""


def time_in(tree: Path, case: str, calls: int, threads: int, env: dict[str, str]) -> float:
    """Best seconds per call of ``case`` with the swinseg of ``tree``, in a fresh process."""
    code = CHILD.format(tree=str(tree.resolve()), case=case, calls=calls, threads=threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tree)
    if out.returncode:
        raise SystemExit(f"{tree}: case {case} failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--cases", nargs="+", default=["segment-512", "train"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    sys.path.insert(0, str(args.after.resolve()))
    from swinseg.ops import cpu_info

    env = dict(os.environ, SWINSEG_HOME=os.environ.get("SWINSEG_HOME") or tempfile.mkdtemp(prefix="swinseg-commits-"))
    trees = {"before": args.before, "after": args.after}
    times: dict[str, dict[str, list[float]]] = {case: {name: [] for name in trees} for case in args.cases}
    started = time.perf_counter()
    for r in range(args.rounds):
        for case in args.cases:
            for name, tree in trees.items() if r % 2 == 0 else reversed(trees.items()):
                times[case][name].append(time_in(tree, case, args.calls, args.threads, env))
        print(f"round {r + 1}/{args.rounds} done after {time.perf_counter() - started:.0f} s", flush=True)

    print(f"\n{'case':<14} {'before s':>9} {'after s':>9} {'after/before':>13}")
    rows = []
    for case, by_tree in times.items():
        before, after = (statistics.median(by_tree[n]) for n in trees)
        rows.append({"case": case, "before_s": before, "after_s": after, "ratio": after / before, "times": by_tree})
        print(f"{case:<14} {before:>9.3f} {after:>9.3f} {after / before:>13.3f}")
    if args.out:
        facts = {"cpu": cpu_info(), "threads": args.threads, "rounds": args.rounds, "calls": args.calls}
        args.out.write_text(json.dumps({"environment": facts, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
