"""Loading a trained checkpoint for inference, with nothing but the checkpoint file.

The checkpoint carries class names, the backbone's identity (id, weights, preprocessing), the sampling
rate and the window length; this module rebuilds the backbone from that and labels videos.
"""

from __future__ import annotations

import inspect
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from ..backbones.onnx_runtime import QUANT_VERSION
from ..backbones.registry import build_backbone
from ..backbones.yolo import FALL_DETECTION
from ..decision.rule import FallRule
from ..decision.windows import VideoPrediction, take, video_prediction, window_starts  # noqa: F401  (re-exported)
from ..features.cache import extract_video
from ..features.detector import VERSION as PERSON_VERSION
from ..features.person import build_features
from ..model.classifier import FORMAT_VERSION, ActionClassifier
from ..utils.errors import UsageError
from ..video.region import regions_by_size

log = logging.getLogger(__name__)


class CheckpointError(UsageError):
    """A missing, unreadable or foreign checkpoint."""


def load_classifier(path: str | os.PathLike, map_location: str = "cpu") -> ActionClassifier:
    p = Path(path)
    if p.is_dir():
        raise CheckpointError(f"{p}: a folder, not a checkpoint file; an export bundle (`action-rec export`) runs "
                              "with `action-rec label/live --ckpt FOLDER`, everything else takes the .ckpt")
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        # weights_only: a checkpoint is data, never code to run.
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's own message suggests weights_only=False; that would run code from the file, so don't echo it
        raise CheckpointError(f"{p}: not an action_rec checkpoint (not a PyTorch file, or one holding pickled "
                              "objects beyond tensors and plain data, which action_rec refuses to load)") from e
    except Exception as e:  # noqa: BLE001 - a foreign file fails anywhere in the reader (a text file: KeyError)
        detail = (str(e).splitlines() or [""])[0]
        raise CheckpointError(f"{p}: not a readable PyTorch checkpoint ({type(e).__name__}: {detail})") from e
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not hp or "data_spec" not in hp or "class_names" not in hp or "state_dict" not in ckpt:
        raise CheckpointError(f"{p}: not an action_rec checkpoint (no class names / data spec). "
                              "Use a .ckpt written by `action-rec fit`")
    if hp.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{p}: written by a newer action_rec (format {hp['format_version']}); "
                              "upgrade action_rec")
    # Keep only our own arguments (LightningCLI also records how it instantiated the class).
    params = inspect.signature(ActionClassifier.__init__).parameters
    model = ActionClassifier(**{k: v for k, v in hp.items() if k in params and k != "self"})
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{p}: weights do not fit the model its settings describe: {e}") from e
    model.apply_operating_point(ckpt.get("operating_point"))  # the fall rule chosen on validation, if any
    return model.eval()


class Predictor:
    """Checkpoint + rebuilt frozen backbone: `Predictor(ckpt).predict_video(path)`."""

    def __init__(self, ckpt: str | os.PathLike, device: str = "cpu", weights: str | None = None,
                 rule: FallRule | None = None):
        self.model = load_classifier(ckpt)
        self.class_names = self.model.class_names
        spec = self.model.hparams.data_spec
        ident = spec["backbone"]
        self.fps, self.window = spec["fps"], spec["window"]
        # the part of the frames it was trained on, per frame size (data.regions; video/region.py)
        self.regions = regions_by_size(spec.get("regions"))
        if ident.get("precision") == "int8" and ident.get("quant_version") != QUANT_VERSION:
            # Another INT8 recipe gives other features: rebuilding today's network would feed the model features
            # it never saw (recipe 1 also gave different features on AVX2 and VNNI CPUs).
            raise CheckpointError(
                f"{ckpt}: trained on features of INT8 recipe {ident.get('quant_version')}, but this action_rec "
                f"builds recipe {QUANT_VERSION} (the same features on every CPU); retrain it with the same config "
                "(`action-rec fit --config ...`): extraction and training take minutes")
        self.backbone = build_backbone(ident["backbone"], weights=weights or spec.get("weights_arg", "default"),
                                       image_size=ident["preprocess"]["size"], device=device,
                                       precision=ident.get("precision", "fp32"),
                                       resize=ident["preprocess"].get("resize", "letterbox"))
        if ident.get("features", "frame") != "frame":
            det = ident["detector"]
            if det.get("version") != PERSON_VERSION:
                raise CheckpointError(f"{ckpt}: trained on person features of version {det.get('version')}, but this "
                                      f"action_rec computes version {PERSON_VERSION}; retrain it with the same config "
                                      "(`action-rec fit --config ...`)")
            self.backbone = build_features(self.backbone, ident["features"], spec.get("detector_arg", FALL_DETECTION),
                                           det["image_size"], spec.get("tracker_arg", det["tracker"]))
            if self.backbone.detector.weights_id != det["weights"]:
                log.warning("person detector weights differ from training (%s vs %s): predictions may be off",
                            self.backbone.detector.weights_id, det["weights"])
        self.model.to(device)  # after the backbone: its errors (e.g. an int8 backbone asked for a GPU) come first
        got = self.backbone.identity()
        if got["feature_dim"] != ident["feature_dim"]:
            raise CheckpointError(f"{ckpt}: trained on {ident['feature_dim']}-d features but the backbone "
                                  f"built now gives {got['feature_dim']}-d")
        if got["weights"] != ident["weights"]:
            log.warning("backbone weights differ from training (%s vs %s): predictions may be off",
                        got["weights"], ident["weights"])
        self.rule = rule or self.model.rule
        self.device = device

    @torch.inference_mode()
    def window_probs(self, feats: np.ndarray, stride: int | None = None) -> tuple[np.ndarray, list[int]]:
        """All windows of a feature sequence in one batched LSTM call -> ((W, C) probs, starts)."""
        starts = window_starts(len(feats), self.window, stride or max(1, self.window // 2))
        seq = take(feats, np.arange(starts[-1] + self.window))  # repeat-last padding, as windows() pads
        seq = torch.from_numpy(np.ascontiguousarray(seq)).float().to(self.device)
        logits = self.model.net.window_logits(seq, torch.tensor(starts, device=self.device), self.window)
        return logits.softmax(-1).cpu().numpy(), starts

    def predict_features(self, path: str, feats: np.ndarray, stride: int | None = None) -> VideoPrediction:
        probs, starts = self.window_probs(feats, stride)
        return video_prediction(path, probs, starts, self.class_names, self.rule, self.fps, self.window)

    def streaming_classifier(self, window: int, stride: int):
        """What live mode advances frame by frame (stream.StreamingClassifier on this checkpoint's LSTM)."""
        from .stream import StreamingClassifier

        return StreamingClassifier(self.model.net, window, stride)

    def predict_video(self, path: str | os.PathLike, stride: int | None = None) -> VideoPrediction:
        feats, _ = extract_video(self.backbone, path, self.fps, region=self.regions)
        return self.predict_features(str(path), feats, stride)
