"""Windows over a feature sequence and the video decision made from their probabilities, without torch.

Shared by the checkpoint path (inference.Predictor, data, stream) and the torch-free bundle runtime
(export/runtime.py), so the two cut the same windows and turn them into the same label and fall events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rule import FallRule, decide


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Window starts covering all n frames; the last window is aligned to the end of the clip."""
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] != n - window:
        starts.append(n - window)
    return starts


def take(feats: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """feats[idx] with indices past the end clamped to the last frame (repeat-last padding)."""
    return feats[np.minimum(idx, len(feats) - 1)]


def windows(feats: np.ndarray, window: int, stride: int | None = None) -> tuple[np.ndarray, list[int]]:
    """((W, window, D) windows of a (N, D) feature sequence, their starts); default stride: half a window."""
    starts = window_starts(len(feats), window, stride or max(1, window // 2))
    idx = np.asarray(starts)[:, None] + np.arange(window)[None, :]
    return take(feats, idx), starts


@dataclass
class VideoPrediction:
    path: str
    label: str
    confidence: float
    probs: dict[str, float]          # mean over windows
    window_probs: np.ndarray         # (W, C)
    window_starts_s: list[float]
    events: list[tuple[float, float]]  # fall events as (start_s, end_s)


def video_prediction(path: str, probs: np.ndarray, starts: list[int], class_names: list[str], rule: FallRule,
                     fps: float, window: int) -> VideoPrediction:
    """The video label, confidence, mean probabilities and fall events of its (W, C) window probabilities."""
    idx, conf, events = decide(probs, class_names, rule)
    t = [s / fps for s in starts]
    win = window / fps
    return VideoPrediction(
        path=str(path), label=class_names[idx], confidence=conf,
        probs=dict(zip(class_names, probs.mean(0).round(6).tolist())), window_probs=probs,
        window_starts_s=t, events=[(t[a], t[b] + win) for a, b in events])
