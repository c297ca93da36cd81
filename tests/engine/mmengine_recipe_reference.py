"""MMSegmentation's Swin recipe as MMEngine builds it (executed by the interpreter in $MMSEG_PYTHON).

Usage: python mmengine_recipe_reference.py OUTPUT_JSON

Builds UPerNet Swin-T from MMSegmentation's own config (BN for SyncBN: one process), its
optimizer through MMEngine's ``build_optim_wrapper`` with the config's ``paramwise_cfg``, and
its ``param_scheduler`` list stepped as MMEngine's training loop steps it. Writes the names of
the parameters without weight decay, the other optimizer settings, and the learning rate of
selected iterations.
"""

import json
import sys
from pathlib import Path

import mmcv_standin  # noqa: F401  (registers the stand-in mmcv._ext before mmseg is imported)
import mmengine.optim.optimizer.default_constructor as default_constructor  # noqa: E402
import mmseg  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import PARAM_SCHEDULERS  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402

register_all_modules()
default_constructor.mmcv_full_available = lambda: False  # the stand-in has no deformable convs to look for
configs = Path(mmseg.__file__).parent / ".mim" / "configs" / "swin"
cfg = Config.fromfile(str(configs / "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py"))
cfg.model.backbone.init_cfg = None
cfg.model.decode_head.norm_cfg = dict(type="BN", requires_grad=True)
cfg.model.auxiliary_head.norm_cfg = dict(type="BN", requires_grad=True)
model = MODELS.build(cfg.model)
wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
names = {id(p): n for n, p in model.named_parameters()}
no_decay = sorted(names[id(p)] for g in wrapper.optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"])
all_params = sorted(names[id(p)] for g in wrapper.optimizer.param_groups for p in g["params"])

# the schedule on a one-parameter optimizer with the same base rate
opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=opt)) for s in cfg.param_scheduler]
wanted = {0, 1, 750, 1499, 1500, 1501, 80000, 159998, 159999}
trace = {}
for it in range(cfg.train_cfg.max_iters):
    if it in wanted:
        trace[it] = opt.param_groups[0]["lr"]
    opt.step()
    for s in schedulers:
        s.step()

Path(sys.argv[1]).write_text(
    json.dumps(
        {
            "no_decay": no_decay,
            "params": all_params,
            "optimizer": {k: v for k, v in cfg.optim_wrapper.optimizer.items()},
            "lr": trace,
        }
    )
)
