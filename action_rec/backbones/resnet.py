"""The resnet50 backbone: torchvision's ResNet-50 up to global average pooling (2048-d)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ..utils.errors import BackboneWeightsError
from .base import IMAGENET_MEAN, IMAGENET_STD, Backbone
from .preprocess import Preprocess
from .weights import _construct, _file_id, _load_state_dict, _local_file


def _build_resnet50(weights: str, image_size: int | None) -> Backbone:
    from torchvision.models import ResNet50_Weights, resnet50

    model, weights_id = _construct(resnet50, weights), "random"
    if weights == "default":
        tv = ResNet50_Weights.IMAGENET1K_V2
        fname = Path(urlparse(tv.url).path).name
        cached = Path(torch.hub.get_dir()) / "checkpoints" / fname
        try:  # uses the torch hub cache when the file is there (no network), else downloads into it
            state = tv.get_state_dict(progress=True, check_hash=True, map_location="cpu", weights_only=True)
        except Exception as e:
            raise BackboneWeightsError(
                f"resnet50 ImageNet weights ({tv}) could not be obtained: {type(e).__name__}: {e}. To run offline, "
                f"download {tv.url} on a machine with internet (or copy ~/.cache/torch/hub/checkpoints/{fname} from "
                f"one that has it) and either put it at {cached} (then weights: default works offline) or pass "
                f"`weights: /path/to/{fname}` (CLI: --data.weights /path/to/{fname})."
            ) from e
        _load_state_dict(model, cached, "torchvision resnet50", state)
        weights_id = f"torchvision:{tv.name}"
    elif weights != "random":
        path = _local_file(weights)
        _load_state_dict(model, path, "torchvision resnet50")
        weights_id = _file_id(path)
    net = nn.Sequential(*list(model.children())[:-1], nn.Flatten(1))  # everything up to global-avg-pool, no fc
    return Backbone("resnet50", weights_id, net, Preprocess(image_size or 224, mean=IMAGENET_MEAN, std=IMAGENET_STD))
