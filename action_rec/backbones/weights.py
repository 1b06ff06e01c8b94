"""Loading a backbone's weights: local files, content ids for the feature-cache key, strict state dicts."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import torch
from torch import nn

from ..utils.errors import BackboneWeightsError


def _local_file(weights: str) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    return path


def _file_id(path: Path) -> str:
    # Content hash, not the path: the same weights copied elsewhere must hit the same feature cache.
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"file:{path.name}:{digest.hexdigest()[:12]}"


def _construct(make, weights: str) -> nn.Module:
    """Build on the meta device when a state_dict will overwrite every tensor (resnet50's random init costs 0.5-2 s)."""
    with contextlib.nullcontext() if weights == "random" else torch.device("meta"):
        return make()


def _load_state_dict(model: nn.Module, path: Path, what: str, state: dict | None = None) -> None:
    """Strictly load a plain state_dict file (weights_only: never unpickle arbitrary objects) into ``model``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True) if state is None else state
    except Exception as e:
        raise BackboneWeightsError(f"{path} is not a {what} state_dict readable with torch.load(weights_only=True): "
                                   f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if isinstance(state, dict) and state and all(str(k).startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}  # saved from DataParallel
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"{path} holds a {type(state).__name__}, not a {what} state_dict")
    try:
        model.load_state_dict(state, strict=True, assign=True)  # assign: replaces the meta tensors of _construct
    except RuntimeError as e:
        raise BackboneWeightsError(f"{path} is not a {what} state_dict: {str(e)[:600]}") from e
