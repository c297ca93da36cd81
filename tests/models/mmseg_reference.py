"""Run MMSegmentation's own Swin backbone on saved inputs (executed by the interpreter in $MMSEG_PYTHON).

Usage: python mmseg_reference.py OFFICIAL_CKPT CONFIG_JSON INPUTS_PT OUTPUTS_PT

A checkpoint in the official layout (``{'model': ...}``) goes through MMSegmentation's
swin2mmseg converter, so the key mapping and merge-order permutation are MMSegmentation's own;
any other checkpoint must already be in MMSegmentation's layout and is loaded strictly, unless
the config names it as ``init_cfg`` pretrained weights: then the backbone's own ``init_weights``
loads it (resizing bias tables as MMSegmentation does).
"""

import importlib.util
import json
import sys
from pathlib import Path

import mmcv_standin  # noqa: F401  (registers the stand-in mmcv._ext before mmseg is imported)
import mmseg  # noqa: E402
import torch  # noqa: E402
from mmseg.models.backbones.swin import SwinTransformer  # noqa: E402

ckpt_path, config_json, inputs_path, outputs_path = sys.argv[1:5]
converter = Path(mmseg.__file__).parent / ".mim" / "tools" / "model_converters" / "swin2mmseg.py"
spec = importlib.util.spec_from_file_location("swin2mmseg", converter)
swin2mmseg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(swin2mmseg)

checkpoint = torch.load(ckpt_path, map_location="cpu")
model = SwinTransformer(**json.loads(config_json))
model.eval()
if "init_cfg" in json.loads(config_json):
    model.init_weights()
elif "model" in checkpoint:
    result = model.load_state_dict(swin2mmseg.convert_swin(checkpoint["model"]), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("relative_position_index")]
    if missing:
        raise SystemExit(f"MMSegmentation model lacks weights for {missing}")
else:
    model.load_state_dict(checkpoint, strict=True)
with torch.no_grad():
    outputs = [[o.clone() for o in model(x)] for x in torch.load(inputs_path)]
torch.save(outputs, outputs_path)
