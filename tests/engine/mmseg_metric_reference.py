"""Run MMSegmentation's own ``IoUMetric`` on saved predictions (executed by $MMSEG_PYTHON).

Usage: python mmseg_metric_reference.py REQUEST_PT OUT_PT

REQUEST_PT holds ``pairs`` (a list of (pred, label) int64 tensors), ``num_classes``,
``ignore_index``, ``iou_metrics``, ``beta`` and ``nan_to_num``. OUT_PT receives what
``compute_metrics`` returns and the per-class values of ``total_area_to_metrics`` (the ones
MMSegmentation prints in its table), rounded as it rounds them.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
import mmcv_standin  # noqa: E402, F401  (registers the stand-in mmcv._ext before mmseg is imported)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmseg.evaluation import IoUMetric  # noqa: E402

request = torch.load(sys.argv[1])
metric = IoUMetric(
    ignore_index=request["ignore_index"], iou_metrics=request["iou_metrics"], nan_to_num=request["nan_to_num"], beta=request["beta"]
)
metric.dataset_meta = {"classes": [f"c{i}" for i in range(request["num_classes"])]}
samples = [{"pred_sem_seg": {"data": pred[None]}, "gt_sem_seg": {"data": label[None]}} for pred, label in request["pairs"]]
metric.process({}, samples)
results = tuple(zip(*metric.results, strict=True))
areas = [sum(r) for r in results]
summary = metric.compute_metrics(metric.results)
per_class = IoUMetric.total_area_to_metrics(*areas, request["iou_metrics"], request["nan_to_num"], request["beta"])
per_class.pop("aAcc")
torch.save(
    {
        "summary": {k: float(v) for k, v in summary.items()},
        "per_class": {k: np.round(v * 100, 2).tolist() for k, v in per_class.items()},
        "areas": [a.long() for a in areas],
    },
    sys.argv[2],
)
