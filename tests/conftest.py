import os
from pathlib import Path

import cv2
import numpy as np
import pytest

# Tests run on this machine's 2 cores; keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")

REALVIDS = Path(__file__).resolve().parents[2] / "shared" / "realvids"


def write_video(path, n_frames=20, fps=10.0, size=(64, 48), seed=0, moving=True):
    """A tiny test video: a bright square that moves (or not) across a noisy background.
    Frame i has mean brightness tied to i so tests can tell frames apart."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(seed)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened()
    for i in range(n_frames):
        f = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        x = int(i * (w - 10) / max(n_frames - 1, 1)) if moving else w // 2
        f[h // 3: h // 3 + 10, x: x + 10] = 255
        vw.write(f)
    vw.release()
    return path


@pytest.fixture(scope="session", autouse=True)
def onnx_cache_in_tmp(tmp_path_factory):
    """Backbones export their network to ONNX once into a user cache: never the real one from tests (also
    inherited by CLI subprocesses)."""
    old = os.environ.get("ACTION_REC_ONNX_CACHE")
    os.environ["ACTION_REC_ONNX_CACHE"] = str(tmp_path_factory.mktemp("onnx_cache"))
    yield
    if old is None:
        os.environ.pop("ACTION_REC_ONNX_CACHE", None)
    else:
        os.environ["ACTION_REC_ONNX_CACHE"] = old


@pytest.fixture
def make_video():
    return write_video


@pytest.fixture
def tiny_dataset(tmp_path):
    """root/<label>/*.mp4 with 3 classes x 4 clips."""
    root = tmp_path / "ds"
    for c, label in enumerate(["falling", "running", "walking"]):
        for i in range(4):
            write_video(root / label / f"{label}_{i}.mp4", n_frames=12 + 4 * i, fps=10, seed=10 * c + i,
                        moving=label != "falling")
    return root


def write_checkpoint(path, class_names=("falling", "running", "walking"), fps=4.0, window=6,
                     image_size=64, hidden=32, seed=0, precision="fp32", **model_kwargs):
    """An untrained but complete action_rec checkpoint (random-weight efficientnet_lite0 at a tiny
    input size; the packaged ImageNet weights for precision int8, whose calibration needs real
    activations), in the same format `action-rec fit` writes: enough for every inference path."""
    import torch

    from action_rec.backbones import build_backbone
    from action_rec.model.classifier import ActionClassifier

    torch.manual_seed(seed)
    weights = "random" if precision == "fp32" else "default"
    bb = build_backbone("efficientnet_lite0", weights=weights, image_size=image_size, precision=precision)
    spec = {"backbone": bb.identity(), "weights_arg": weights, "fps": float(fps), "window": int(window),
            "padding": "repeat_last"}
    model = ActionClassifier(list(class_names), bb.feature_dim, spec, hidden=hidden, **model_kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


@pytest.fixture
def make_checkpoint():
    return write_checkpoint
