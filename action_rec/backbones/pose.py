"""The mediapipe_pose backbone: a person crop -> 33 body landmarks -> a 43-number pose row (no ImageNet feature).

Where the person is and how their box moves is in person.GEOMETRY; whether they stand, lie or stride is in their
pose, and a pose looks the same in any room. MediaPipe's BlazePose landmark network ("full", Apache-2.0) is shipped
as a .tflite file inside the `mediapipe` 0.10.x wheels on PyPI (`pip install --no-deps mediapipe==0.10.14`: the
file is all we use, located with find_spec, never imported) and run by OpenVINO, which reads .tflite files (fp32,
unused outputs pruned: ~1.5x LiteRT's speed), or by Google's LiteRT interpreter (`ai-edge-litert`) where OpenVINO is
not installed or ACTION_REC_POSE_RUNTIME=litert; the two agree to 0.01 px. It expects a person roughly centred in a
square crop, which is what `features: person` hands a backbone: the tracked person's box with a margin, letterboxed.
Whole frames (`features: frame`) work, but a small person in a wide frame gets few pixels.

The row, per crop: [pose score, 13 key points (nose, shoulders, elbows, wrists, hips, knees, ankles) as (x, y) from
the hip centre in torso lengths, their 13 visibilities, sin and cos of the torso's angle from upright, log
height/width of the key points' extent]. Zeros but the score when the network finds no pose. No velocities: the
LSTM takes each row's change from the last (ActionLSTM motion) and GEOMETRY has the box's.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..utils.errors import BackboneWeightsError, UsageError
from .base import Backbone
from .openvino_core import openvino_available
from .pose_runtime import INSTALL as _INSTALL
from .pose_runtime import MODEL_FILE, OpenVINORunner, litert_runner
from .preprocess import Preprocess
from .weights import _file_id

ROW_VERSION = 3  # of the row's definition, in the weights id: caches and checkpoints of another never mix
KEY_POINTS = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
ROW_DIM = 1 + 2 * len(KEY_POINTS) + len(KEY_POINTS) + 3
_MIN_SCORE = 0.5
RUNTIME_ENV = "ACTION_REC_POSE_RUNTIME"
RUNTIMES = ("auto", "litert", "openvino")


def find_pose_model() -> Path | None:
    """mediapipe/modules/pose_landmark/pose_landmark_full.tflite of an installed mediapipe wheel, if any."""
    spec = importlib.util.find_spec("mediapipe")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "modules" / "pose_landmark" / MODEL_FILE
        if path.is_file():
            return path
    return None


def pose_row(landmarks: np.ndarray, score: float, size: float) -> np.ndarray:
    """(33, >=4) landmarks (x, y, z in input pixels, visibility logit) of one crop -> the ROW_DIM row."""
    row = np.zeros(ROW_DIM, np.float32)
    row[0] = score
    if score < _MIN_SCORE:
        return row
    p = landmarks[:, :2] / size
    hip, shoulder = p[[23, 24]].mean(0), p[[11, 12]].mean(0)
    torso = shoulder - hip
    length = max(float(np.linalg.norm(torso)), 1e-3)
    k = len(KEY_POINTS)
    row[1:1 + 2 * k] = np.clip((p[list(KEY_POINTS)] - hip) / length, -4, 4).ravel()
    row[1 + 2 * k:1 + 3 * k] = 1 / (1 + np.exp(-np.clip(landmarks[list(KEY_POINTS), 3], -30, 30)))
    angle = np.arctan2(torso[0], -torso[1])  # 0 = shoulders straight above the hips (image y points down)
    extent = np.ptp(p[list(KEY_POINTS)], axis=0) + 1e-3
    row[-3:] = [np.sin(angle), np.cos(angle), np.clip(np.log(extent[1] / extent[0]), -4, 4)]
    return row


class PoseNet(nn.Module):
    """(N, 3, 256, 256) RGB in [0, 1] -> (N, ROW_DIM) upright pose rows. The network runs in OpenVINO when it is
    installed (`runtime="auto"`), else in Google's LiteRT interpreter; built lazily, once per process, never pickled.
    PoseBackbone.embed adds the lying-person turn."""

    def __init__(self, path: Path, threads: int | None = None, runtime: str | None = None):
        super().__init__()
        self.path, self.threads = str(path), threads
        self.runtime = runtime or os.environ.get(RUNTIME_ENV) or "auto"
        if self.runtime not in RUNTIMES:
            raise UsageError(f"pose runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r} "
                             f"(from {RUNTIME_ENV}?)")
        self._run = None
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)  # a device and dtype for Backbone.run

    def __getstate__(self):
        return {**self.__dict__, "_run": None}

    def runner(self):
        """image (S, S, 3) float32 -> ((33, 5) landmarks, score). Threads follow torch's, like the detector's:
        decoder workers run one each."""
        if self._run is None:
            threads = self.threads or torch.get_num_threads()
            if self.runtime == "openvino" and not openvino_available():
                raise UsageError("pose runtime openvino needs the openvino package (`pip install openvino`); or set "
                                 f"{RUNTIME_ENV}=auto to use LiteRT")
            use_ov = self.runtime == "openvino" or (self.runtime == "auto" and openvino_available())
            self._run = OpenVINORunner(self.path, threads) if use_ov else litert_runner(self.path, threads)
        return self._run

    def landmarks(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """(33, 5) landmarks in input pixels and the pose score of one (S, S, 3) float image in [0, 1]."""
        return self.runner()(np.ascontiguousarray(image, dtype=np.float32)[None])

    def looks(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, float]]:
        """landmarks() of each image; OpenVINO runs several at once (pose_runtime.OpenVINORunner.many)."""
        if len(images) <= 1:
            return [self.landmarks(image) for image in images]
        run = self.runner()
        xs = [np.ascontiguousarray(image, dtype=np.float32)[None] for image in images]
        return run.many(xs) if hasattr(run, "many") else [run(x) for x in xs]

    def row(self, image: np.ndarray, lying: bool = False) -> np.ndarray:
        return self.rows([image], [lying])[0]

    def rows(self, images: list[np.ndarray], lying: list[bool]) -> np.ndarray:
        """The pose row of each image. The network was trained on crops turned so the body is upright and sized by
        its own alignment points (MediaPipe gets them from its detector, or from the last frame's landmarks), and
        reads a lying person as a confident upright one. So: a first look, turned a quarter each way when the
        crop is wider than tall (a lying or bending person), the better score kept; then, when that pose says the
        body is tilted, off-centre or mis-sized in the crop, a second look at the crop MediaPipe would have taken
        (roi_from_landmarks), kept if it scores at least as well. Landmarks are mapped back onto the image, so the
        row's torso angle is the person's own. All images' first looks run together, then all second looks."""
        if not images:
            return np.zeros((0, ROW_DIM), np.float32)
        size = images[0].shape[0]
        first = [(i, k) for i, turned in enumerate(lying) for k in ((1, 3) if turned else (0,))]
        best: list = [None] * len(images)
        for (i, k), (lm, score) in zip(first, self.looks([np.rot90(images[i], k) for i, k in first])):
            if best[i] is None or score > best[i][1]:
                best[i] = (_turn_back(lm, k, size), score)
        second = [(i, roi_from_landmarks(lm, size)) for i, (lm, score) in enumerate(best) if score >= _MIN_SCORE]
        second = [(i, roi) for i, roi in second if roi is not None]
        for (i, roi), (lm, score) in zip(second, self.looks([_warp(images[i], roi) for i, roi in second])):
            if score >= best[i][1]:
                best[i] = (_apply(roi, lm), score)
        return np.stack([pose_row(lm, score, size) for lm, score in best])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # NHWC, as TFLite takes it
        return torch.from_numpy(self.rows(list(images), [False] * len(images))).to(x.device)


def roi_from_landmarks(lm: np.ndarray, size: int, tol: float = 0.15) -> np.ndarray | None:
    """MediaPipe's landmark ROI from a pose's two alignment points (33: hip centre, 34: a point that gives the
    body's size and direction): a square of 2.5 x their distance around the hip centre, turned so the body is
    upright; as a 2x3 matrix taking the (size, size) ROI's pixels to the image's. None when the image already is
    that crop (angle, centre and side within `tol`): the second look would see the same pixels."""
    centre, top = lm[33, :2].astype(np.float64), lm[34, :2].astype(np.float64)
    v = top - centre
    length = float(np.hypot(*v))
    if not np.isfinite(length) or length < 1e-3 * size:
        return None
    angle = float(np.arctan2(v[0], -v[1]))  # 0 = the body points straight up (image y points down)
    side = 2.5 * length
    if (abs(angle) < tol and abs(side / size - 1) < tol and np.all(np.abs(centre / size - 0.5) < tol / 2)):
        return None
    s, c = side / size * np.sin(angle), side / size * np.cos(angle)
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = centre - m[:, :2] @ np.array([size / 2, size / 2])
    return m


def _warp(image: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The ROI's pixels. Landmarks are continuous (a pixel's centre at i + 0.5), cv2 puts it at i: shift by half."""
    m = m.copy()
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    size = image.shape[0]
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)


def _apply(m: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Landmarks in a ROI's pixels -> the image's, by the ROI's 2x3 matrix (z and visibility kept)."""
    out = lm.copy()
    out[:, :2] = lm[:, :2] @ m[:, :2].T + m[:, 2]
    return out


def _turn_back(lm: np.ndarray, k: int, size: float) -> np.ndarray:
    """Landmarks found on np.rot90(image, k) -> the same points on the image itself."""
    out = lm.copy()
    x, y = lm[:, 0], lm[:, 1]
    if k == 1:    # rot90 counter-clockwise: new (x, y) was (size - y, x)
        out[:, 0], out[:, 1] = size - y, x
    elif k == 3:  # clockwise: new (x, y) was (y, size - x)
        out[:, 0], out[:, 1] = y, size - x
    return out


# Left/right pairs among KEY_POINTS (shoulders, elbows, wrists, hips, knees, ankles); the nose stays.
_PAIRS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)]


def mirror_row() -> tuple[np.ndarray, np.ndarray]:
    """(perm, sign) with pose_row(mirrored landmarks) == pose_row(landmarks)[perm] * sign: a person seen in a mirror
    has their left and right key points swapped, x from the hip centre negated and the torso leaning the other way."""
    k = len(KEY_POINTS)
    swap = np.arange(k)
    for a, b in _PAIRS:
        swap[a], swap[b] = b, a
    perm = np.concatenate([[0], (1 + 2 * swap[:, None] + np.arange(2)).ravel(), 1 + 2 * k + swap,
                           [ROW_DIM - 3, ROW_DIM - 2, ROW_DIM - 1]])
    sign = np.ones(ROW_DIM, np.float32)
    sign[1:1 + 2 * k:2] = -1  # x of each key point
    sign[ROW_DIM - 3] = -1    # sin of the torso angle
    return perm, sign


class PoseBackbone(Backbone):
    """A Backbone whose network is not torch: no ONNX export, no INT8 (LiteRT runs it as shipped), and each crop's
    shape decides whether it is also run turned (PoseNet.rows)."""

    exports_onnx = False

    def use_onnx(self, cache_dir=None, precision: str = "fp32") -> bool:
        return False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def mirror(self) -> tuple[np.ndarray, np.ndarray]:
        return mirror_row()

    def embed(self, frames, batch_size: int = 1) -> np.ndarray:
        frames = [np.asarray(frame) for frame in frames]
        images = [self.preprocess.fitted([f])[0].astype(np.float32) / 255.0 for f in frames]
        return self.net.rows(images, [f.shape[1] > f.shape[0] for f in frames])


def _build_pose(weights: str, image_size: int | None) -> Backbone:
    if image_size not in (None, 256):
        raise BackboneWeightsError(f"the mediapipe_pose network takes 256-px crops; leave image_size unset (got "
                                   f"{image_size})")
    if weights == "random":
        raise BackboneWeightsError("the mediapipe_pose backbone has no random initialisation; use --data.weights "
                                   f"default (needs {_INSTALL.split(' (')[0]}) or a local {MODEL_FILE}")
    if weights == "default":
        path = find_pose_model()
        if path is None:
            raise BackboneWeightsError(f"the mediapipe_pose backbone needs {MODEL_FILE}: {_INSTALL}")
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise BackboneWeightsError(f"pose model not found: {weights}; {_INSTALL}")
    weights_id = f"{_file_id(path)}:rows{ROW_VERSION}"
    return PoseBackbone("mediapipe_pose", weights_id, PoseNet(path),
                        Preprocess(256, mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0), pad_value=0))
