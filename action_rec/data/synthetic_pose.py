"""Synthetic body-pose clips: the synthetic dataset's people as body-pose feature rows, without drawing a pixel.

A pose network does not see the rendered figures as people, but the pose features do not need pixels: the synthetic
dataset plans every clip in 3D (synth.plan_clip: a jointed body, a gait or an `other` action, a camera that films
it) before it draws anything, and its projected joints are the key points a pose network would find. So each planned
clip becomes, per sample at the checkpoint's rate, the row `features: person` with the mediapipe_pose backbone
gives a real person: backbones.pose.pose_row of the joints (with the jitter, low visibilities and misses of a real
pose network) and features.person.box_row of their box (the detector's class read from the box's shape: a lying
body is what the fall-detection model calls "fall"). A person out of view or an empty scene gives the no-person row.

`data.synthetic_pose: N` adds N such clips per class (falling, walking, running, other) to the training split only,
as one source per class (so with data.source_balance 1 they weigh as one more source, never the majority), and
never to validation or test: the operating point and every reported figure stay on real clips.
"""

from __future__ import annotations

import functools

import numpy as np

from ..backbones.pose import ROW_DIM, pose_row
from ..features.person import GEOMETRY, BoxHistory, box_row
from ..synth.body import P
from ..synth.render import ALL_CLASSES, plan_clip

SOURCE = "synthetic body pose"
# MediaPipe's landmark index -> the synthetic body's point (the person's own left and right, as MediaPipe's are)
LANDMARKS = {0: "head", 11: "sh_l", 12: "sh_r", 13: "el_l", 14: "el_r", 15: "wr_l", 16: "wr_r", 23: "hip_l",
             24: "hip_r", 25: "knee_l", 26: "knee_r", 27: "ankle_l", 28: "ankle_r"}
# "sprint" is a sprint start or stop, labelled `other` in the synthetic set; real running clips hold the same strides.
SKIP_OTHER = ("sprint",)
_JITTER = 0.04   # landmark noise, in torso lengths: a pose network's frame-to-frame wobble
_MISS = 0.04     # share of samples where the pose network finds no pose in the person's crop
_BEHIND = 0.04   # a point this far (person heights) behind the pelvis is hidden by the body: lower visibility
_SEED0 = 7_000_003  # far from the synthetic dataset's own seed streams


def feature_dim() -> int:
    return ROW_DIM + len(GEOMETRY)


@functools.lru_cache(maxsize=4096)
def pose_clip(action: str, seed: int, fps: float = 8.0) -> np.ndarray:
    """(samples, ROW_DIM + len(GEOMETRY)) rows of one planned synthetic clip, sampled at `fps` by timestamp."""
    plan = plan_clip(action, seed)
    rng = np.random.default_rng(seed ^ 0x5EED)
    W, H = plan.size
    cam = plan.camera
    visible = getattr(plan.motion, "visible", True)
    n = int(np.floor(plan.times[-1] * fps + 1e-9)) + 1
    frames = np.searchsorted(plan.times, np.arange(n) / fps - 1e-9)  # the first frame at or after each sample time
    hist = BoxHistory()
    blank = np.zeros((H, W, 0), np.uint8)  # box_row cuts a crop; no pixels are needed
    out = np.zeros((n, feature_dim()), np.float32)
    names = [LANDMARKS.get(i) for i in range(33)]
    for s, i in enumerate(np.minimum(frames, len(plan.times) - 1)):
        uv = np.stack([cam["us"][i], cam["vs"][i]], 1).astype(np.float64)
        pad = float(cam["rads"][i].max())
        x1, y1 = uv.min(0) - pad
        x2, y2 = uv.max(0) + pad
        inside = min(x2, W) - max(x1, 0) > 0.3 * (x2 - x1) and min(y2, H) - max(y1, 0) > 0.3 * (y2 - y1)
        if not visible or not inside:
            hist.forget()  # the no-person row; the person's past starts again when they come back
            continue
        xyxy = np.array([max(x1, 0), max(y1, 0), min(x2, W), min(y2, H)])
        lying = (xyxy[2] - xyxy[0]) > (xyxy[3] - xyxy[1])
        score = float(rng.uniform(0.4, 0.9))
        _, out[s, ROW_DIM:] = box_row(hist, blank, xyxy, score, "fall" if lying else "normal", 1)
        if rng.random() < _MISS:
            out[s, 0] = rng.uniform(0.0, 0.5)
            continue
        lm = np.zeros((33, 5), np.float64)
        torso = np.linalg.norm(uv[[P["sh_l"], P["sh_r"]]].mean(0) - uv[[P["hip_l"], P["hip_r"]]].mean(0))
        z = cam["Z"][i]
        for k, name in enumerate(names):
            if name is None:
                continue
            lm[k, :2] = uv[P[name]] + rng.normal(0, _JITTER * max(torso, 1.0), 2)
            in_view = 0 <= uv[P[name], 0] < W and 0 <= uv[P[name], 1] < H
            hidden = z[P[name]] - z[P["pelvis"]] > _BEHIND
            lm[k, 3] = rng.normal(3.0, 1.0) if in_view and not hidden else rng.normal(-0.5, 1.5)
        out[s, :ROW_DIM] = pose_row(lm, float(rng.uniform(0.8, 1.0)), 1.0)
    out.flags.writeable = False  # cached: every caller shares this array
    return out


def synthetic_pose_clips(classes: list[str], per_class: int | dict[str, int], fps: float
                         ) -> list[tuple[np.ndarray, int, str]]:
    """(rows, class index, label) of `per_class` planned clips (or per_class[label]) for each of `classes` the
    synthetic set can make."""
    out = []
    for label in classes:
        n = per_class.get(label, 0) if isinstance(per_class, dict) else per_class
        if label not in ALL_CLASSES or not n:
            continue
        made, seed = 0, _SEED0 + 100_000 * ALL_CLASSES.index(label)
        while made < n:
            seed += 1
            if label == "other":
                from ..synth.actions import other_action

                if other_action(seed) in SKIP_OTHER:
                    continue
            out.append((pose_clip(label, seed, float(fps)), classes.index(label), label))
            made += 1
    return out
