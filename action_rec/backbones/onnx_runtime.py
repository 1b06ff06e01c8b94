"""Run a frozen backbone network through ONNX Runtime on CPU; the torch network stays the reference and fallback.

Measured on the 2-core dev CPU (AVX2), efficientnet_lite0 batch 4: torch eager (channels_last, BN folded) 51 frames/s
at 224 px, ONNX Runtime 157 (3.1x); 134 -> 278 at 160 px. Features agree to ~1e-5 (a probe frame is compared at every
build), so :meth:`Backbone.identity` - the feature-cache key - does not depend on the runtime.

The exported ``.onnx`` file is a cache: one file per backbone identity (name, weights, input size) in
``$ACTION_REC_ONNX_CACHE`` or ``~/.cache/action_rec/onnx/``, written atomically; a missing, corrupt or mismatching
file is re-exported. Random weights differ at every build, so their export stays in memory (no files pile up). When
export or ONNX Runtime fails for any reason, one warning is logged and the caller keeps using torch. Exporting uses
torch's TorchScript exporter (``dynamo=False``), which needs the ``onnx`` package but not ``onnxscript``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import os
import warnings
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from ..utils.io import atomic_write

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported inside the functions that export or check a network: OnnxNet and OnnxEmbedder must load
# without it, so a worker process that only decodes and embeds never imports torch (~2 s of CPU each).

log = logging.getLogger(__name__)

CACHE_ENV = "ACTION_REC_ONNX_CACHE"
# Bump when the export recipe or a feature network's code changes: old cached files then stop matching.
EXPORT_VERSION = 1
RUNTIMES = ("auto", "torch", "onnx")
PRECISIONS = ("fp32", "int8")
# Bump when the INT8 recipe (calibration frames, quantisation settings) changes: int8 features then change too, and
# this number is part of an int8 backbone's identity, so their feature caches and checkpoints stay apart.
QUANT_VERSION = 2  # 2: 7-bit weights, exact on every CPU (1 saturated on AVX2: CPU-dependent features)
# Convolutions, in graph order, that the INT8 recipe keeps in float (see quantize_int8).
FLOAT_CONVS = 3
# An int8 network whose features point elsewhere than the float network's is broken, not just approximate: the
# shipped recipe gives a mean cosine of 0.975 on real footage (efficientnet_lite0 @224, any CPU); the v1 recipe's
# saturation on AVX2 CPUs gave 0.84-0.90.
MIN_INT8_COSINE = 0.9


def onnxruntime_available() -> bool:
    """Importable, without importing it (~0.2 s)."""
    return importlib.util.find_spec("onnxruntime") is not None


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "action_rec" / "onnx").expanduser()


def cache_path(identity: dict, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the exported network of a backbone with this identity (named weights) lives."""
    key = {"identity": identity, "export_version": EXPORT_VERSION}
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return folder / f"{identity['backbone']}-{identity['preprocess']['size']}px-{h}.onnx"


def export(net: nn.Module, size: int, path: Path | None = None, dynamic_hw: bool = False) -> bytes | None:
    """Export ``net`` ((N,3,S,S) -> (N,D)) with a dynamic batch axis to ``path``, atomically (never a half-written
    file), or with ``path=None`` to the returned bytes. ``dynamic_hw``: input height and width dynamic too (for
    "rect" preprocessing; ~7 % slower on a square input than a fixed-size export)."""
    import torch

    example = torch.zeros(2, 3, size, size)  # batch 2: nothing may specialise on a batch of one
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns that it is deprecated, and tracing warns about Python-side shape checks
        # (constant for a fixed input size): none of it is actionable for a user.
        warnings.simplefilter("ignore")

        def write(dest):
            torch.onnx.export(net, (example,), dest, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n", 2: "h", 3: "w"} if dynamic_hw else {0: "n"}, "y": {0: "n"}},
                              dynamo=False)

        if path is None:
            buffer = io.BytesIO()
            write(buffer)
            return buffer.getvalue()
        atomic_write(path, write)
        return None


class OnnxNet:
    """An ONNX Runtime session on an exported network (a file or its bytes): ``OnnxNet(model)(x) -> (N, D) float32``.

    Picklable: the session (which is not) is dropped when pickled and rebuilt on first use, so a Backbone can be sent
    to a worker process; the worker's session then uses that process's ``torch.get_num_threads()``. A forked child
    builds its own session too (a session's thread pool does not survive fork).
    """

    def __init__(self, model: Path | bytes, threads: int | None = None):
        self.model = model if isinstance(model, bytes) else Path(model)
        self.threads = threads  # None: follow torch's setting
        self._session, self._pid = None, None

    def start(self) -> OnnxNet:
        """Build the session now if it is not built yet (raises if ONNX Runtime cannot load the file)."""
        self.session
        return self

    @property
    def session(self):
        if self._session is None or self._pid != os.getpid():
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Follow torch (OMP_NUM_THREADS / torch.set_num_threads). Sequential execution, no inter-op pool:
            # ORT_PARALLEL with 2 inter-op threads was 1.7x slower on the 2-core dev CPU (a chain of convs has
            # nothing to run in parallel); ORT_ENABLE_BASIC instead of ALL was 2.6x slower.
            if self.threads is None:
                import torch

                opts.intra_op_num_threads = torch.get_num_threads()
            else:
                opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            # No busy-waiting between ops (as OMP_WAIT_POLICY=PASSIVE for torch, see __init__): spinning threads
            # starve the video-decoding thread and stall when another process shares the cores. lite0@224, batch 4,
            # 2 cores shared with other jobs: median 79 frames/s without spinning vs 43 with, end-to-end extraction
            # 56 vs 24; in the quietest windows 139 vs 144 (-4%).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.log_severity_level = 3  # errors only: its graph-optimisation notices are not for users
            model = self.model if isinstance(self.model, bytes) else str(self.model)
            self._session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
            self._pid = os.getpid()
        return self._session

    def __call__(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        x = x.detach().cpu().contiguous().numpy() if hasattr(x, "detach") else np.ascontiguousarray(x)
        return self.session.run(None, {"x": x.astype(np.float32, copy=False)})[0]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_session": None}


class OnnxEmbedder:
    """Frames -> features with ONNX Runtime and numpy only: what a worker process of batch labelling runs.

    Picklable and free of torch (Backbone.worker_embedder() makes one): a spawned worker that unpickles it
    imports cv2, numpy and onnxruntime, not torch (~2 s of CPU and ~300 MB per process). Same network file
    and preprocessing as the backbone, so the same features as Backbone.embed.
    """

    def __init__(self, net: OnnxNet, preprocess, feature_dim: int, batch_size: int = 4):
        self.net, self.preprocess, self.feature_dim, self.batch_size = net, preprocess, feature_dim, batch_size

    fits_frames = True

    def video_embedder(self) -> OnnxEmbedder:
        return self

    def embed(self, frames) -> np.ndarray:
        out = np.empty((len(frames), self.feature_dim), dtype=np.float32)
        for idx, chunk in self.preprocess.chunks(frames, self.batch_size):
            out[idx] = self.net(self.preprocess.numpy(chunk))
        return out


def quantize_int8(fp32_model: Path | bytes, calibration: np.ndarray, path: Path | None = None) -> bytes | None:
    """Static INT8 quantisation of an exported float network with ONNX Runtime's quantisation tool, with a recipe
    that computes the same features on every CPU (QUANT_VERSION 2).

    Why this recipe: x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply uint8 activations by int8 weights
    with VPMADDUBSW, which adds pairs of products into a *saturating* int16. With 8-bit weights a pair reaches
    2 * 255 * 127 = 64770 and is clipped, so the shipped v1 recipe gave features 0.84-0.90 cosine away from the
    float ones on an AVX2 EPYC while a VNNI CPU (exact 32-bit sums) gave 0.98: features depended on the CPU.
    ``reduce_range`` quantises weights to 7 bits ([-64, 64]): a pair is at most 2 * 255 * 64 = 32640 < 32767, so
    no CPU saturates and the integer arithmetic is exact everywhere (checked bit-for-bit under an emulated AVX2
    CPU). It costs precision where the network runs at full resolution, so the first FLOAT_CONVS convolutions
    (efficientnet_lite0: the stem and the first block, the 112x112 layers, ~4 % of the multiply-adds) stay in
    float: mean cosine to the float features on real footage 0.963 -> 0.975, at the same speed (3.9 ms a frame on
    one VNNI core; u8u8, the other saturation-free choice, keeps 8 bits but is ~20 % slower there).

    Format: QOperator, uint8 activations, per-channel int8 weights, activation ranges by MinMax over
    ``calibration`` (N,3,S,S preprocessed frames). Written atomically to ``path``, or with ``path=None`` returned
    as bytes.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": calibration[i:i + 4]} for i in range(0, len(calibration), 4)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="action_rec-quant-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src, pre, out = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(fp32_model if isinstance(fp32_model, bytes) else Path(fp32_model).read_bytes())
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # shape inference + graph clean-up first
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        # The tool logs a root-logger warning per clipped bias (not actionable for a user); a handler keeps
        # logging.warning() from installing basicConfig on the root logger as a side effect.
        root, hush = logging.getLogger(), logging.NullHandler()
        level = root.level
        root.addHandler(hush)
        root.setLevel(logging.ERROR)
        try:
            quantize_static(str(pre), str(out), Batches(), quant_format=QuantFormat.QOperator,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            reduce_range=True, nodes_to_exclude=convs[:FLOAT_CONVS],
                            calibrate_method=CalibrationMethod.MinMax)
        finally:
            root.removeHandler(hush)
            root.setLevel(level)
        data = out.read_bytes()
    if path is None:
        return data
    atomic_write(path, lambda tmp_path: Path(tmp_path).write_bytes(data))
    return None


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine similarity of matching rows."""
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30
    return float((num / den).mean())


class Int8MismatchError(RuntimeError):
    """The INT8 network runs, but its features are not the float network's (a CPU whose integer kernels give other
    results than the recipe assumes): a model trained on int8 features elsewhere would be fed other features."""

    def __init__(self, cosine: float, frames: int):
        super().__init__(f"the INT8 network's features differ from the float network's (mean cosine {cosine:.3f} "
                         f"on {frames} calibration frames, minimum {MIN_INT8_COSINE})")
        self.cosine, self.frames = cosine, frames


def load_or_quantize(net: nn.Module, identity: dict, calibration: np.ndarray,
                     cache_dir: str | os.PathLike | None = None) -> OnnxNet:
    """The INT8 network of a backbone whose identity says ``precision: int8``, quantised once and cached like
    :func:`load_or_export`. Checked against the torch network on the calibration frames (mean cosine similarity
    >= MIN_INT8_COSINE); a cached file that fails the check is rebuilt once; raises when that fails too
    (Int8MismatchError when the network runs but its features are off)."""
    float_identity = {k: v for k, v in identity.items() if k not in ("precision", "quant_version")}
    probe = np.ascontiguousarray(calibration[:8])
    last = []

    def build(path):
        fp32 = load_or_export(net, float_identity, cache_dir).model
        return quantize_int8(fp32, calibration, path)

    def problem(got, expected):
        last.append(_cosine(got, expected))
        return None if last[-1] >= MIN_INT8_COSINE else \
            f"its features differ from the float network's (mean cosine {last[-1]:.3f})"

    try:
        return _cached_net(net, identity, cache_dir, probe, build, problem, "quantising the {} network to INT8",
                           "the INT8 {} network is unusable", "quantising again")
    except RuntimeError as e:
        if last and last[-1] < MIN_INT8_COSINE:
            raise Int8MismatchError(last[-1], len(probe)) from e
        raise


def _probe(h: int, w: int) -> torch.Tensor:
    # A fixed natural-range input (preprocessed pixels are ~[-2.1, 2.6]); one frame where the export traced two, so
    # the check also proves the batch axis is dynamic (and, given a non-square shape, the spatial axes).
    import torch

    return torch.from_numpy(np.random.default_rng(0).uniform(-2.0, 2.0, (1, 3, h, w)).astype(np.float32))


def _agree(got: np.ndarray, expected: np.ndarray) -> bool:
    # Relative to the features' scale: random-weight deep nets give features ~1e-10, where an absolute bound is void.
    scale = float(np.abs(expected).max())
    return got.shape == expected.shape and float(np.abs(got - expected).max()) <= 1e-3 * scale + 1e-12


def load_or_export(net: nn.Module, identity: dict, cache_dir: str | os.PathLike | None = None) -> OnnxNet:
    """The network as an ONNX Runtime session, exported once per identity and checked against ``net``.

    A cached file that does not load or does not reproduce ``net`` on a probe batch is re-exported once; raises if
    export, loading or the check still fails (the caller falls back to torch). Random weights (not reproducible:
    every build draws new ones) are exported to memory, never cached.
    """
    import onnxruntime  # noqa: F401  (not installed: fail here, before exporting anything)

    size = int(identity["preprocess"]["size"])
    rect = identity["preprocess"].get("resize") == "rect"
    probe = _probe(size - 32, size) if rect and size > 32 else _probe(size, size)
    return _cached_net(net, identity, cache_dir, probe, lambda path: export(net, size, path, dynamic_hw=rect),
                       lambda got, expected: None if _agree(got, expected) else
                       "its output differs from the torch network's",
                       "exporting the {} network to ONNX", "the exported {} network is unusable", "re-exporting")


def _cached_net(net: nn.Module, identity: dict, cache_dir, x: np.ndarray, build, problem, building: str,
                unusable: str, again: str) -> OnnxNet:
    """The cached ONNX file of ``identity`` if it loads and passes ``problem(its output, net's output) is None`` on
    ``x``; otherwise ``build(path)`` it (bytes in memory for random weights, which differ at every build) and check
    once more; raises RuntimeError when a fresh build fails too."""
    import torch

    in_memory = str(identity["weights"]).startswith("random")
    path = None if in_memory else cache_path(identity, cache_dir)
    x = torch.as_tensor(x)
    with torch.inference_mode():
        expected = net(x.contiguous(memory_format=torch.channels_last)).float().numpy()
    fresh = in_memory or not path.is_file()
    while True:
        model = path
        if fresh:
            log.info(building.format(identity["backbone"]) + ("" if in_memory else
                     f" (once per backbone, weights and input size): {path}"))
            model = build(path) or path
        onnx_net = OnnxNet(model)
        try:
            issue = problem(onnx_net(x), expected)
            if issue is None:
                return onnx_net
        except Exception as e:  # a truncated or foreign file: onnxruntime's errors have no common base class
            issue = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]
        if fresh:
            raise RuntimeError(f"{unusable.format(identity['backbone'])}: {issue}")
        log.info("cached %s is unusable (%s): %s", path, issue, again)
        fresh = True
