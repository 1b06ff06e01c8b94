"""Frozen per-frame feature extractors (the backbone half of backbone -> cached features -> LSTM).

Every backbone is built with :func:`registry.build_backbone` and maps RGB uint8 frames to one pooled float32 vector per
frame.  Backbones never train: parameters have ``requires_grad=False``, the module stays in ``eval()`` whatever
``.train()`` is called with (BatchNorm statistics can never move), and :meth:`Backbone.embed` runs under
``torch.inference_mode()``.  :meth:`Backbone.identity` is the feature-cache key, so anything that changes the
features (weights, input size, preprocessing) must be part of it.

On CPU, :meth:`Backbone.embed` runs the network through ONNX Runtime when it is installed (~3x faster; same features
to ~1e-5, see :mod:`action_rec.backbones.onnx_runtime`); the torch module is the reference and the fallback.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import torch
from torch import nn

from ..utils.errors import BackboneWeightsError
from . import onnx_runtime
from .calibration import calibration_frames
from .folding import _fold_batchnorm
from .preprocess import Preprocess

log = logging.getLogger(__name__)

# Measured on the 2-core dev CPU (1 MiB L2 per core), interleaved best-of windows: batch 4 is the fastest or within
# 2% for every backbone; larger batches spill activations out of cache (efficientnet_lite0 @224: 78 frames/s at
# batch 4, 61 at 8, 50 at 16, ~24 at 32; same order with 1 thread or under load). On a GPU pass a larger batch_size.
DEFAULT_BATCH_SIZE = 4
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

    exports_onnx = True  # False: a network ONNX Runtime cannot take (backbones/pose.py runs on LiteRT)

    def mirror(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(perm, sign): the feature row of the left-right mirrored picture is row[perm] * sign, for training-time
        mirroring (data.mirror). None: not known (an ImageNet embedding of a mirrored image is not a permutation)."""
        return None

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
