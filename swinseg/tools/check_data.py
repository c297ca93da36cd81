"""``swinseg check-data``: scan a config's dataset splits for problems before training on them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.dataset import SegDataset, build_dataset
from ..models import resolve_config
from ..progress import progress_bar
from .label_doctor import Finding, diagnose, scan_labels

__all__ = ["SplitReport", "check_split", "check_config"]


@dataclass
class SplitReport:
    """What a scan of one split found: sample count, image sizes, pixels per class and problems."""

    split: str
    samples: int = 0
    heights: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    class_pixels: np.ndarray | None = None
    ignored_pixels: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self, classes: list[str]) -> Iterator[str]:
        yield f"[{self.split}] {self.samples} samples"
        if self.heights:
            yield (
                f"  image sizes: height {min(self.heights)}..{max(self.heights)}, width {min(self.widths)}..{max(self.widths)}"
                f" (median {int(np.median(self.heights))}x{int(np.median(self.widths))})"
            )
        if self.class_pixels is not None:
            total = int(self.class_pixels.sum()) + self.ignored_pixels
            yield f"  ignored pixels: {self.ignored_pixels / max(total, 1):.2%}"
            absent = [classes[i] for i in np.flatnonzero(self.class_pixels == 0)]
            order = np.argsort(-self.class_pixels)
            yield "  class frequencies (share of labelled pixels):"
            labelled = max(int(self.class_pixels.sum()), 1)
            for i in order[: min(len(order), 20)]:
                if self.class_pixels[i]:
                    yield f"    {i:4d} {classes[i]:<24} {self.class_pixels[i] / labelled:7.2%}"
            if len(order) > 20:
                yield f"    ... {int((self.class_pixels > 0).sum()) - 20} more classes present"
            if absent:
                yield f"  classes never labelled: {', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}"
        for problem in self.problems:
            yield f"  problem: {problem}"


def _check_one(dataset: SegDataset, index: int) -> tuple[tuple[int, int] | None, np.ndarray | None, str | None]:
    try:
        image, label = dataset[index]
    except (ValueError, FileNotFoundError) as e:
        return None, None, str(e)
    return image.shape[:2], label, None


def check_split(dataset: SegDataset, split: str, workers: int = 4, progress: bool = True) -> SplitReport:
    """Read every sample of ``dataset`` (images, labels, their sizes and values) in ``workers`` threads."""
    report = SplitReport(split, samples=len(dataset), class_pixels=np.zeros(dataset.num_classes, np.int64))
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        results = pool.map(lambda i: _check_one(dataset, i), range(len(dataset)))
        for size, label, problem in progress_bar(results, total=len(dataset), desc=f"check {split}", unit="img", enabled=progress):
            if problem:
                report.problems.append(problem)
                continue
            report.heights.append(size[0])
            report.widths.append(size[1])
            valid = label != dataset.ignore_index
            report.ignored_pixels += int((~valid).sum())
            report.class_pixels += np.bincount(label[valid].ravel(), minlength=dataset.num_classes)[: dataset.num_classes]
    return report


def check_config(config: dict[str, Any], workers: int = 4, progress: bool = True) -> tuple[list[SplitReport], list[str], list[Finding]]:
    """Reports for the ``train`` and ``val`` splits of a config, the class names, and the label
    doctor's findings (:mod:`swinseg.tools.label_doctor`)."""
    model = resolve_config(config)["model"]
    num_classes, ignore_index = model["decode_head"]["num_classes"], model["ignore_index"]
    reports, classes, scans = [], [str(i) for i in range(num_classes)], {}
    for split in ("train", "val"):
        try:
            dataset = build_dataset(config["data"], split, num_classes, ignore_index)
        except (ValueError, FileNotFoundError) as e:
            reports.append(SplitReport(split, problems=[str(e)]))
            continue
        classes = list(dataset.classes)
        scans[split] = scan_labels([ann for _, ann in dataset.samples], workers, progress, desc=f"labels {split}")
        reports.append(check_split(dataset, split, workers, progress))
    findings = []
    if "train" in scans:
        data = config["data"]
        findings = diagnose(
            scans["train"], scans.get("val"), num_classes, data["reduce_zero_label"], ignore_index, data["palette"], classes
        )
    return reports, classes, findings
