"""The label-setup doctor of ``swinseg check-data``: reads the annotation files as stored, before
``reduce_zero_label``, and explains the mistakes that most often make a model learn nothing, with
the config lines that fix them. The usual ones: binary masks saved as 0/255 (255 is the ignore
index), ``reduce_zero_label`` on when 0 is a class or off when it means "other", values beyond
``num_classes``, colour-coded masks, classes that never occur, heavy imbalance."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.classes import ade20k_palette
from ..progress import progress_bar

__all__ = ["Finding", "LabelScan", "colour_to_ids", "diagnose", "scan_labels"]


@dataclass
class Finding:
    """One diagnosis: ``severity`` is ``problem`` (training would silently go wrong) or
    ``warning``; ``fix`` holds the config lines (or steps) that fix it."""

    severity: str
    text: str
    fix: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"  {self.severity}: {self.text}", *(f"      {line}" for line in self.fix)]


@dataclass
class LabelScan:
    """Stored values of a split's annotations: pixel counts per value (single-channel files),
    colour counts (RGB files, as 0xRRGGBB) and an example of each kind."""

    files: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(65536, np.int64))
    colours: dict[int, int] = field(default_factory=dict)
    colour_files: int = 0
    colour_example: str | None = None
    unreadable: int = 0

    @property
    def values(self) -> np.ndarray:
        return np.flatnonzero(self.counts)


def _read(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img)
    except (OSError, SyntaxError, ValueError):
        return None


def scan_labels(paths: Sequence[Path], workers: int = 4, progress: bool = True, desc: str = "labels") -> LabelScan:
    """Count the stored values (or colours) of every annotation file, in ``workers`` threads."""
    scan = LabelScan(files=len(paths))
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        labels = zip(paths, pool.map(_read, paths), strict=True)
        for path, label in progress_bar(labels, total=len(paths), desc=desc, unit="img", enabled=progress):
            if label is None:
                scan.unreadable += 1
            elif label.ndim == 3:
                rgb = label[..., :3].astype(np.uint32)
                keys, counts = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2], return_counts=True)
                for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
                    scan.colours[key] = scan.colours.get(key, 0) + count
                scan.colour_files += 1
                scan.colour_example = scan.colour_example or str(path)
            else:
                scan.counts += np.bincount(label.astype(np.int64).ravel(), minlength=65536)[:65536]
    return scan


def _key(rgb: Sequence[int]) -> int:
    return (int(rgb[0]) << 16) | (int(rgb[1]) << 8) | int(rgb[2])


def colour_to_ids(mask: np.ndarray, palette: Sequence[Sequence[int]], fill: int = 255) -> np.ndarray:
    """An (H, W, 3) RGB colour-coded mask as (H, W) uint8 class ids, class ``i`` being
    ``palette[i]``; colours not in the palette become ``fill`` (the ignore index)."""
    rgb = mask[..., :3].astype(np.uint32)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    table = {_key(c): i for i, c in enumerate(palette)}
    out = np.full(keys.shape, fill, np.uint8)
    for key, index in table.items():
        out[keys == key] = index
    return out


def _share(part: int, whole: int) -> str:
    return f"{part / max(whole, 1):.1%}"


def _palette_findings(scan: LabelScan, palette: Sequence[Sequence[int]] | None, classes: int) -> list[Finding]:
    total = sum(scan.colours.values())
    named = {"ADE20K's": ade20k_palette(), **({"the config's": palette} if palette else {})}
    matches = []
    for name, colours in named.items():
        keys = {_key(c) for c in colours}
        covered = sum(n for key, n in scan.colours.items() if key in keys)
        if covered >= 0.99 * total:
            matches.append(f"{name} palette ({_share(covered, total)} of their pixels)")
    how = (
        f"their colours match {' and '.join(matches)}"
        if matches
        else f"{len(scan.colours)} distinct colours, matching neither ADE20K's palette nor data.palette"
    )
    return [
        Finding(
            "problem",
            f"{scan.colour_files} annotation(s) are colour-coded RGB images (e.g. {scan.colour_example}); labels must be "
            f"single-channel class ids. {how}",
            [
                "convert each mask to class ids (class i = palette entry i, other colours -> 255), e.g.:",
                'python -c "import sys, cv2; from swinseg.tools.label_doctor import colour_to_ids; '
                'm = cv2.imread(sys.argv[1])[..., ::-1]; cv2.imwrite(sys.argv[2], colour_to_ids(m, PALETTE))" in.png out.png',
                f"with PALETTE the {classes} [r, g, b] colours in class order (data.palette)",
            ],
        )
    ]


def diagnose(
    train: LabelScan,
    val: LabelScan | None,
    num_classes: int,
    reduce_zero_label: bool,
    ignore_index: int = 255,
    palette: Sequence[Sequence[int]] | None = None,
    classes: Sequence[str] | None = None,
) -> list[Finding]:
    """What is wrong with the label setup, judged from the stored values of the splits."""
    findings: list[Finding] = []
    if train.colour_files or (val and val.colour_files):
        findings += _palette_findings(train if train.colour_files else val, palette, num_classes)
    counts = train.counts + (val.counts if val else 0)
    total = int(counts.sum())
    if not total:
        return findings
    values = set(np.flatnonzero(counts).tolist())
    names = list(classes) if classes else [str(i) for i in range(num_classes)]
    head = ["model:", "  decode_head: {num_classes: {n}}", "  auxiliary_head: {num_classes: {n}}"]

    if values <= {0, ignore_index} and len(values) == 2:
        findings.append(
            Finding(
                "problem",
                f"the masks hold only 0 and {ignore_index} (binary masks saved as 0/255): {ignore_index} is the ignore index, so "
                f"the foreground ({_share(int(counts[ignore_index]), total)} of pixels) is never learned",
                [
                    "store the foreground as 1 (e.g. cv2.imwrite(out, (mask > 127).astype('uint8'))), then set:",
                    *(line.replace("{n}", "2") for line in head),
                    "data: {reduce_zero_label: false, classes: [background, foreground]}",
                ],
            )
        )
        return findings

    labelled = sorted(v for v in values if v != ignore_index)
    top = labelled[-1] if labelled else 0
    if reduce_zero_label and 0 in values and top <= num_classes - 1:
        findings.append(
            Finding(
                "warning",
                f"reduce_zero_label is on: value 0 ({_share(int(counts[0]), total)} of pixels) is ignored and k becomes k-1, but the "
                f"stored values 0..{top} already fit num_classes={num_classes} as they are. If 0 is a class, turn it off",
                ["data: {reduce_zero_label: false}"],
            )
        )
    shift = 1 if reduce_zero_label else 0
    beyond = [v for v in labelled if v - shift >= num_classes]
    if beyond:
        pixels = int(counts[beyond].sum())
        shown = ", ".join(str(v) for v in beyond[:8]) + (" ..." if len(beyond) > 8 else "")
        fixes = [*(line.replace("{n}", str(top + 1 - shift)) for line in head)]
        if not reduce_zero_label and 0 in values and top == num_classes:
            fixes = ["if 0 means unlabelled/other: data: {reduce_zero_label: true}", "if 0 is a class as well:", *fixes]
        findings.append(
            Finding(
                "problem",
                f"values {shown} ({_share(pixels, total)} of pixels) are at or beyond num_classes={num_classes}"
                f"{' after reduce_zero_label' if reduce_zero_label else ''}: training stops at the first such file",
                fixes,
            )
        )
    elif not reduce_zero_label and 0 in values and counts[0] > 0.5 * total and top == num_classes - 1:
        findings.append(
            Finding(
                "warning",
                f"value 0 covers {_share(int(counts[0]), total)} of pixels and is learned as class '{names[0]}'. If 0 means "
                f"unlabelled/other (as in ADE20K), ignore it",
                ["data: {reduce_zero_label: true}", *(line.replace("{n}", str(num_classes - 1)) for line in head)],
            )
        )

    class_counts = np.zeros(num_classes, np.int64)
    for v in labelled:
        if 0 <= v - shift < num_classes:
            class_counts[v - shift] += int(train.counts[v])
    absent = [names[i] for i in np.flatnonzero(class_counts == 0)]
    if absent and train.counts.any():
        findings.append(
            Finding(
                "warning",
                f"{len(absent)} class(es) never occur in the training split: {', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}; "
                f"the model cannot learn them",
                ["check num_classes and data.classes, or add training images that show them"],
            )
        )
    present = class_counts[class_counts > 0]
    if len(present) > 1 and present.max() > 100 * present.min():
        freq = class_counts / max(class_counts.sum(), 1)
        weights = np.where(class_counts > 0, 1 / np.log(1.02 + freq), 0.0)
        weights = weights / weights[class_counts > 0].mean()
        rare = names[int(np.argmin(np.where(class_counts > 0, class_counts, np.iinfo(np.int64).max)))]
        findings.append(
            Finding(
                "warning",
                f"heavy class imbalance: the most frequent class has {present.max() / present.min():.0f}x the pixels of the rarest "
                f"('{rare}', {_share(int(present.min()), int(class_counts.sum()))})",
                [
                    "if wanted, MMSegmentation-style class weights (1 / ln(1.02 + frequency), mean 1) for a weighted loss:",
                    f"loss_decode=dict(type='CrossEntropyLoss', class_weight=[{', '.join(f'{w:.3f}' for w in weights)}])",
                    "(swinseg trains with the Swin recipe's unweighted cross-entropy)",
                ],
            )
        )
    return findings
