"""Fuzz the checkpoint loader: random byte flips, truncations and extensions of a native
``.safetensors`` and a native ``.pth`` file, each loaded the way a user loads one
(``swinseg.create_model(path)``). Every case must end in one of two ways: the original weights
and class names exactly, or an error whose one line names the file. Anything else (different
weights without an error, an error that does not name the file, a hang, a crash) is counted as a
failure. Cases run in a child process, restarted after a crash, each under an alarm.

    python benchmarks/fuzz_checkpoints.py --cases 500 --out benchmarks/fuzz-checkpoints.json
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch

import swinseg
from swinseg.models.segmentor import EncoderDecoder
from swinseg.ops import machine_info

FORMATS = (".safetensors", ".pth")
KINDS = ("flip", "truncate", "extend")
GOOD = ("original weights", "one-line error naming the file")
_HANG_S = 20


def write_originals(folder: Path) -> dict[str, Path]:
    """A small randomized segmentor with class names, saved once per format."""
    torch.manual_seed(0)
    model = EncoderDecoder(
        backbone=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)),
        decode_head=dict(channels=16, num_classes=5),
        auxiliary_head=None,
    )
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    model.dataset_meta = {"classes": ["sky", "road", "tree", "car", "person"], "palette": [[i, 2 * i, 3 * i] for i in range(5)]}
    return {suffix: swinseg.save_checkpoint(model, folder / f"original{suffix}") for suffix in FORMATS}


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random corruption of ``data``: flip 1-8 bytes, cut it short, or append 1-4096 bytes."""
    kind = rng.choice(KINDS)
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= rng.randint(1, 255)
        return kind, bytes(out)
    if kind == "truncate":
        return kind, data[: rng.randrange(len(data))]
    return kind, data + rng.randbytes(rng.randint(1, 4096))


def _alarm(signum: int, frame: object) -> None:
    raise TimeoutError


def run_case(path: Path, original: torch.nn.Module) -> tuple[str, str]:
    """Load ``path`` as a user would; classify how it ended."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(_HANG_S)
    try:
        model = swinseg.create_model(str(path))
    except TimeoutError:
        return "hang", f"over {_HANG_S} s"
    except Exception as e:  # the point of the fuzz: see what escapes
        message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        if "\n" in message.strip() or str(path) not in message:
            return "unclear error", f"{type(e).__name__}: {message[:200]}"
        return GOOD[1], type(e).__name__
    finally:
        signal.alarm(0)
    ours, theirs = model.state_dict(), original.state_dict()
    same = ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    if same and getattr(model, "dataset_meta", None) == original.dataset_meta:
        return GOOD[0], ""
    return "different weights, no error", ""


def child(folder: Path, start: int, cases: int, seed: int, without_digest: bool) -> None:
    """Run cases ``start..`` in turn; print one JSON line per case."""
    if without_digest:  # what the loader alone catches, for comparison
        from swinseg.weights import io

        io._verify = lambda *args: None
    originals = {suffix: folder / f"original{suffix}" for suffix in FORMATS}
    models = {suffix: swinseg.create_model(str(path)) for suffix, path in originals.items()}
    print("ready", flush=True)
    for i in range(start, 2 * cases):
        suffix = FORMATS[i % 2]
        kind, data = mutate(originals[suffix].read_bytes(), random.Random(seed * 1_000_003 + i))
        path = folder / f"case{suffix}"
        path.write_bytes(data)
        outcome, detail = run_case(path, models[suffix])
        print(json.dumps({"case": i, "format": suffix, "kind": kind, "outcome": outcome, "detail": detail}), flush=True)


def fuzz(cases: int, seed: int, without_digest: bool = False) -> list[dict]:
    """``cases`` cases per format; a child process that dies is recorded as a crash of the case
    it was on, and a new child goes on from the next one."""
    records: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_originals(folder)
        while len(records) < 2 * cases:
            start = len(records)
            command = [sys.executable, __file__, "--child", str(folder), "--start", str(start), "--cases", str(cases), "--seed", str(seed)]
            command += ["--without-digest"] if without_digest else []
            proc = subprocess.run(command, capture_output=True, text=True)
            records += [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
            if "ready" not in proc.stdout.splitlines():
                raise RuntimeError(f"the fuzz child failed before its first case:\n{proc.stderr[-3000:]}")
            if proc.returncode != 0:
                i = len(records)
                records.append({"case": i, "format": FORMATS[i % 2], "kind": "?", "outcome": "crash", "detail": proc.stderr[-300:]})
    return records


def summarize(records: list[dict]) -> dict:
    table: dict = {}
    for suffix in FORMATS:
        for kind in KINDS:
            table[f"{suffix} {kind}"] = dict(Counter(r["outcome"] for r in records if r["format"] == suffix and r["kind"] == kind))
    return {
        "cases": len(records),
        "outcomes": dict(Counter(r["outcome"] for r in records)),
        "by_format_and_kind": table,
        "error_types": dict(Counter(r["detail"] for r in records if r["outcome"] == GOOD[1])),
        "failures": [r for r in records if r["outcome"] not in GOOD],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=500, help="cases per format")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="JSON result file")
    p.add_argument("--without-digest", action="store_true", help="skip the SHA-256 check, to see what it adds")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.start, args.cases, args.seed, args.without_digest)
        return
    summary = summarize(fuzz(args.cases, args.seed, args.without_digest))
    print(f"{'file and corruption':24} " + " ".join(f"{o:>32}" for o in GOOD) + f" {'other':>8}")
    for row, counts in summary["by_format_and_kind"].items():
        other = sum(v for k, v in counts.items() if k not in GOOD)
        print(f"{row:24} " + " ".join(f"{counts.get(o, 0):>32}" for o in GOOD) + f" {other:>8}")
    print(f"{summary['cases']} cases: {summary['outcomes']}")
    for failure in summary["failures"][:20]:
        print("FAILURE", failure)
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "machine": machine_info(),
                    "torch": torch.__version__,
                    "seed": args.seed,
                    "digest_checked": not args.without_digest,
                    **summary,
                },
                indent=1,
            )
        )
    sys.exit(1 if summary["failures"] else 0)


if __name__ == "__main__":
    main()
