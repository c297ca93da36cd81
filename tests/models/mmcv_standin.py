"""Imported first by the MMSegmentation reference scripts (run by $MMSEG_PYTHON): registers a
stand-in ``mmcv._ext``. mmcv-lite has no compiled ops; Swin and UPerNet never call them."""

import sys
import types


class _StandInExt(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(f"mmcv._ext.{name} is not available")

        return unavailable


sys.modules["mmcv._ext"] = _StandInExt("mmcv._ext")
