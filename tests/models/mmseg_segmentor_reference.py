"""Run MMSegmentation's own UPerNet + Swin (executed by the interpreter in $MMSEG_PYTHON).

Usage: python mmseg_segmentor_reference.py REQUEST_JSON OUTPUTS_PT

The request names one of MMSegmentation's Swin config files, overrides for its ``model``
section, a checkpoint in MMSegmentation's layout, image files, and optionally a batch of
(inputs, labels) for the loss. Outputs: per image, MMSegmentation's ``inference_model`` logits
and prediction (whole and slide), its ``SegTTAModel`` prediction and logits, and the losses.
"""

import copy
import json
import sys
from pathlib import Path

import mmcv_standin  # noqa: F401  (registers the stand-in mmcv._ext before mmseg is imported)
import mmseg  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.dataset import Compose, pseudo_collate  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.apis import inference_model, init_model  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

request = json.loads(Path(sys.argv[1]).read_text())
configs = Path(mmseg.__file__).parent / ".mim" / "configs" / "swin"
cfg = Config.fromfile(str(configs / f"{request['config']}.py"))
norm = dict(type="BN", requires_grad=True)
cfg.merge_from_dict({"model": request["model"]})
cfg.model.decode_head.norm_cfg = norm
cfg.model.auxiliary_head.norm_cfg = norm
model = init_model(cfg, request["checkpoint"], device="cpu")
model.eval()

out = {"whole": [], "slide": [], "tta": [], "dataset_meta": model.dataset_meta}
with torch.no_grad():
    for path in request["images"]:
        r = inference_model(model, path)
        out["whole"].append((r.seg_logits.data.clone(), r.pred_sem_seg.data[0].clone()))
    model.test_cfg = ConfigDict(mode="slide", crop_size=tuple(request["crop_size"]), stride=tuple(request["stride"]))
    for path in request["images"]:
        r = inference_model(model, path)
        out["slide"].append((r.seg_logits.data.clone(), r.pred_sem_seg.data[0].clone()))
    model.test_cfg = ConfigDict(mode="whole")

    tta_pipeline = copy.deepcopy(cfg.tta_pipeline)
    tta_pipeline[1]["transforms"] = [t for t in tta_pipeline[1]["transforms"] if t[0]["type"] != "LoadAnnotations"]
    pipeline = Compose(tta_pipeline)
    tta = MODELS.build(dict(type="SegTTAModel", module=model))
    for path in request["images"]:
        data = pseudo_collate([pipeline(dict(img_path=path))])
        r = tta.test_step(data)[0]
        out["tta"].append(r.pred_sem_seg.data[0].clone())

if "loss_batch" in request:
    inputs, labels = torch.load(request["loss_batch"])
    model.train()
    samples = []
    for label in labels:
        s = SegDataSample(gt_sem_seg=PixelData(data=label[None]))
        s.set_metainfo(dict(img_shape=tuple(inputs.shape[-2:]), pad_shape=tuple(inputs.shape[-2:])))
        samples.append(s)
    losses = model.loss(inputs, samples)
    out["loss"] = {k: v.detach().clone() for k, v in losses.items()}
torch.save(out, sys.argv[2])
