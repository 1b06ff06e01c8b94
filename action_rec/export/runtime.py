"""Run an exported bundle (`action-rec export`) with numpy, OpenCV and ONNX Runtime only: no torch, no Lightning.

A bundle is a folder (see export/bundle.py for how it is written and README "Deploy without PyTorch"):

    bundle.json     everything inference needs: classes, preprocessing, fps, window, fall rule, graph I/O, sha256s
    backbone.onnx   the frozen backbone, (n, 3, H, W) float32 -> (n, D) features; the checkpoint's own int8 graph
    head.onnx       projection + 2-layer LSTM + softmax with explicit state:
                    features (B, T, D), prev (B, D), h0 / c0 (layers, B, hidden) -> probs (B, C), hn, cn

The head takes T frames from the state (h0, c0) and the frame before them (`prev`, for the motion feature), so
one graph serves both uses: T = 1 advances live lanes one frame at a time (state carried between calls), and a
whole window starts from zeros with prev = its first frame, exactly as the checkpoint's LSTM does.

Every file is checked against the sha256 in bundle.json before use, and the format version against the one this
code reads: a missing, altered or newer bundle is a BundleError (one line, exit 2), never a traceback. Nothing is
unpickled: the bundle is JSON and ONNX.

`label --ckpt model/` and `live --ckpt model/` use this module; a worker process of batch labelling gets the
same picklable onnx_runtime.OnnxEmbedder a checkpoint's ONNX backbone gives it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from pathlib import Path

import numpy as np

from ..backbones.onnx_runtime import OnnxEmbedder, OnnxNet
from ..backbones.preprocess import Preprocess
from ..decision.rule import FallRule
from ..decision.windows import VideoPrediction, take, video_prediction, windows
from ..inference.stream import WindowResult
from ..utils.errors import UsageError
from ..video.region import regions_by_size

FORMAT_VERSION = 1  # bump when a bundle's files or bundle.json change meaning; older readers then refuse it
MANIFEST = "bundle.json"
BACKBONE_FILE = "backbone.onnx"
HEAD_FILE = "head.onnx"
HEAD_INPUTS = ("features", "prev", "h0", "c0")
HEAD_OUTPUTS = ("probs", "hn", "cn")
DEFAULT_BATCH_SIZE = 4  # frames per backbone call, as backbones.DEFAULT_BATCH_SIZE (cache-friendly on a CPU)
_REQUIRED = ("format_version", "classes", "fps", "window", "features", "feature_dim", "preprocess", "fall_rule",
             "lstm", "files")


class BundleError(UsageError):
    """A folder given as --ckpt that is not a complete, intact bundle this action_rec can read."""


def is_bundle(path) -> bool:
    """A folder given where a checkpoint goes is a bundle (a checkpoint is a file)."""
    return isinstance(path, (str, os.PathLike)) and Path(path).is_dir()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: str | os.PathLike, verify: bool = True) -> dict:
    """bundle.json of a bundle folder, checked: readable JSON of a format this code knows, every field inference
    needs, and (verify) every listed file present with its recorded sha256. Raises BundleError."""
    root = Path(folder)
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root}: a folder, not a bundle written by `action-rec export` (no {MANIFEST}); --ckpt "
                          "takes a .ckpt file or such a bundle folder")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BundleError(f"{path}: not a readable bundle manifest ({type(e).__name__}: "
                          f"{(str(e).splitlines() or [''])[0]}); export the bundle again") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(f"{path}: not an action_rec bundle manifest (no integer format_version)")
    if version > FORMAT_VERSION:
        raise BundleError(f"{root}: written by a newer action_rec (bundle format {version}; this one reads up to "
                          f"{FORMAT_VERSION}); upgrade action_rec, or export the bundle with this version")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise BundleError(f"{path}: incomplete bundle manifest (no {', '.join(missing)}); export the bundle again")
    files = meta["files"]
    if not isinstance(files, dict) or not {BACKBONE_FILE, HEAD_FILE} <= set(files):
        raise BundleError(f"{path}: the manifest lists no {BACKBONE_FILE} and {HEAD_FILE}; export the bundle again")
    for name, digest in files.items():
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise BundleError(f"{path}: bad file name {name!r} in the manifest (files sit next to {MANIFEST})")
        f = root / name
        if not f.is_file():
            raise BundleError(f"{root}: incomplete bundle: {name} is missing; copy the whole folder, or export it "
                              "again")
        if verify and sha256(f) != digest:
            raise BundleError(f"{root}: {name} does not match the sha256 in {MANIFEST} (altered, truncated or from "
                              "another export); copy the whole folder again, or export it again")
    return meta


def _started(net: OnnxNet) -> OnnxNet:
    """``net`` with its ONNX Runtime session built (the checkpoint path's session options, onnx_runtime.OnnxNet)."""
    try:
        return net.start()
    except Exception as e:  # noqa: BLE001 - onnxruntime's errors have no common base class
        detail = " ".join(str(e).split())[:300]
        raise BundleError(f"{net.model}: ONNX Runtime cannot load it ({type(e).__name__}: {detail})") from None


class BundleBackbone:
    """The bundle's backbone.onnx: frames -> (n, D) features, like backbones.Backbone with runtime "onnx"."""

    fits_frames = True     # whole-frame features: decoders may hand over frames already fitted to the input
    device_type = "cpu"    # labeling.iter_results: workers embed what they decode
    runtime = "onnx bundle"

    def __init__(self, path: Path, identity: dict, threads: int):
        self.path, self.threads, self._identity = Path(path), int(threads), dict(identity)
        pre = identity["preprocess"]
        if pre.get("colour", "RGB") != "RGB":
            raise BundleError(f"{self.path.parent / MANIFEST}: preprocess colour {pre['colour']!r}: this action_rec "
                              "feeds RGB frames")
        self.preprocess = Preprocess(**{k: pre[k] for k in ("size", "resize", "mean", "std", "pad_value") if k in pre})
        self.feature_dim = int(identity["feature_dim"])
        self.net = _started(OnnxNet(self.path, self.threads))  # a file ONNX Runtime cannot load: BundleError here

    def identity(self) -> dict:
        return dict(self._identity)

    def embed(self, frames, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return OnnxEmbedder(self.net, self.preprocess, self.feature_dim, batch_size).embed(frames)

    def worker_embedder(self, threads: int = 1) -> OnnxEmbedder:
        """Picklable and torch-free, for a worker process of batch labelling."""
        return OnnxEmbedder(OnnxNet(self.path, threads), self.preprocess, self.feature_dim)

    def video_embedder(self) -> BundleBackbone:
        return self


class BundleHead:
    """head.onnx: the projection, LSTM and softmax with explicit (h, c) and previous-frame inputs."""

    def __init__(self, path: Path, layers: int, hidden: int, feature_dim: int, threads: int = 1):
        self.session = _started(OnnxNet(path, threads)).session
        self.layers, self.hidden, self.feature_dim = int(layers), int(hidden), int(feature_dim)
        names = {i.name for i in self.session.get_inputs()}
        # a graph that does not use an input (prev, without motion features) may leave it out
        self.inputs = [n for n in HEAD_INPUTS if n in names]
        if "features" not in names or not names <= set(HEAD_INPUTS):
            raise BundleError(f"{path}: not an action_rec head graph (inputs {sorted(names)}); export the bundle again")

    def zeros(self, batch: int) -> np.ndarray:
        return np.zeros((self.layers, batch, self.hidden), np.float32)

    def run(self, features: np.ndarray, prev: np.ndarray, h: np.ndarray, c: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """features (B, T, D) from state (h, c) after frame prev (B, D) -> (probs after the last frame (B, C), hn, cn)."""
        feeds = dict(zip(HEAD_INPUTS, (np.ascontiguousarray(features, np.float32),
                                       np.ascontiguousarray(prev, np.float32), h, c)))
        probs, hn, cn = self.session.run(list(HEAD_OUTPUTS), {k: feeds[k] for k in self.inputs})
        return probs, hn, cn

    def windows(self, x: np.ndarray) -> np.ndarray:
        """(W, T, D) windows, each from a zero state (its first frame has no motion) -> (W, C) probabilities."""
        probs, _, _ = self.run(x, x[:, 0], self.zeros(len(x)), self.zeros(len(x)))
        return probs


class BundleStreamingClassifier:
    """stream.StreamingClassifier on a bundle's head: one lane per window in progress, all lanes advanced by one
    head call per frame with their (h, c, previous frame) carried between calls; the same windows as batch."""

    def __init__(self, head: BundleHead, window: int, stride: int):
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
        self.head, self.window, self.stride = head, int(window), int(stride)
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.state: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # h, c (layers, lanes, hidden); prev
        self.lane_start: list[int] = []
        self.recent: deque[np.ndarray] = deque(maxlen=self.window)

    def push(self, feat: np.ndarray, repeat: int = 1) -> list[WindowResult]:
        out = []
        x = np.asarray(feat, dtype=np.float32)[None]
        for _ in range(repeat):
            if self.n % self.stride == 0:
                self._add_lane(x)
            h, c, prev = self.state
            lanes = np.repeat(x, len(self.lane_start), 0)
            probs, h, c = self.head.run(lanes[:, None], prev, h, c)
            self.state = (h, c, lanes)
            self.recent.append(x[0])
            self.n += 1
            if self.lane_start and self.n - self.lane_start[0] == self.window:
                out.append(WindowResult(self.lane_start.pop(0), probs[0]))
                self.state = (h[:, 1:], c[:, 1:], lanes[1:]) if self.lane_start else None
        return out

    def _add_lane(self, x: np.ndarray) -> None:
        zeros = self.head.zeros(1)
        if self.state is None:
            self.state = (zeros, zeros.copy(), x.copy())
        else:
            h, c, prev = self.state
            self.state = (np.concatenate([h, zeros], 1), np.concatenate([c, zeros], 1), np.concatenate([prev, x]))
        self.lane_start.append(self.n)

    def finish(self) -> list[WindowResult]:
        n, w = self.n, self.window
        if n == 0 or (n >= w and (n - w) % self.stride == 0):
            return []
        feats = np.stack(self.recent)
        x = take(feats, np.arange(w)) if n < w else feats
        return [WindowResult(max(0, n - w), self.head.windows(x[None])[0])]


class BundlePredictor:
    """inference.Predictor's interface (class_names, fps, window, rule, backbone, predict_features, predict_video,
    streaming_classifier) on a bundle, without torch: what label and live use for `--ckpt BUNDLE_FOLDER`."""

    def __init__(self, folder: str | os.PathLike, threads: int | None = None, rule: FallRule | None = None):
        self.folder = Path(folder)
        meta = self.meta = read_manifest(self.folder)
        if meta["features"] != "frame":  # export refuses these; a hand-edited manifest must not get further
            raise BundleError(f"{self.folder}: feature mode {meta['features']!r}: bundles hold whole-frame models only")
        try:
            self.class_names = [str(c) for c in meta["classes"]]
            self.fps, self.window = float(meta["fps"]), int(meta["window"])
            self.regions = regions_by_size(meta.get("regions"))  # bundles of before regions read whole frames
            r = meta["fall_rule"]
            self.rule = rule or FallRule(str(r["fall_class"]), float(r["threshold"]), int(r["k"]), int(r["m"]))
            lstm = meta["lstm"]
            identity = {**meta["backbone"], "preprocess": meta["preprocess"], "feature_dim": int(meta["feature_dim"])}
            threads = int(threads or os.cpu_count() or 1)
            self.backbone = BundleBackbone(self.folder / BACKBONE_FILE, identity, threads)
            self.head = BundleHead(self.folder / HEAD_FILE, lstm["layers"], lstm["hidden"], meta["feature_dim"])
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, BundleError):
                raise
            raise BundleError(f"{self.folder / MANIFEST}: a field inference needs is missing or malformed "
                              f"({type(e).__name__}: {e}); export the bundle again") from None
        self.model = None  # no torch module: live uses streaming_classifier()

    def window_probs(self, feats: np.ndarray, stride: int | None = None) -> tuple[np.ndarray, list[int]]:
        """All windows of a feature sequence in one head call -> ((W, C) probs, starts)."""
        x, starts = windows(feats, self.window, stride)
        return self.head.windows(x), starts

    def predict_features(self, path: str, feats: np.ndarray, stride: int | None = None) -> VideoPrediction:
        probs, starts = self.window_probs(feats, stride)
        return video_prediction(path, probs, starts, self.class_names, self.rule, self.fps, self.window)

    def predict_video(self, path: str | os.PathLike, stride: int | None = None) -> VideoPrediction:
        from ..features.cache import extract_video

        feats, _ = extract_video(self.backbone, path, self.fps, region=self.regions)
        return self.predict_features(str(path), feats, stride)

    def streaming_classifier(self, window: int, stride: int) -> BundleStreamingClassifier:
        return BundleStreamingClassifier(self.head, window, stride)


def load_bundle(folder: str | os.PathLike, device: str = "cpu", threads: int | None = None) -> BundlePredictor:
    """A BundlePredictor; a bundle runs on the CPU (ONNX Runtime's CPU provider)."""
    if str(device) not in ("cpu", "auto"):
        raise BundleError(f"--device {device}: a bundle runs on the CPU with ONNX Runtime; drop --device, or give "
                          "the checkpoint (.ckpt) to run on a GPU")
    return BundlePredictor(folder, threads)
