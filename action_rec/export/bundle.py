"""`action-rec export --ckpt best.ckpt --out model/`: a checkpoint as a self-contained bundle that runs without torch.

The bundle (runtime.py reads it; README "Deploy without PyTorch" has the table):

- backbone.onnx: the very graph the checkpoint path runs on a CPU. For an int8 checkpoint that is the recipe-2
  quantised network from onnx_runtime's cache (the network its training features came from: bit-identical
  features), for fp32 the exported float network (the same cached file when there is one).
- head.onnx: projection, LayerNorm, the 2-layer LSTM and the softmax, with the LSTM state as explicit inputs and
  outputs (h0/c0 -> hn/cn) and the previous frame as an input (the motion feature), batch and time axes dynamic.
- bundle.json: classes, preprocessing, fps, window, feature mode, the fall rule at the checkpoint's operating
  point, each graph's opset and input/output shapes, and the sha256 of every file.

Before the bundle is moved into place it is loaded with runtime.py and checked against the checkpoint (backbone
features on probe frames, window probabilities on random windows, and the step graph against the window graph),
so a bundle that exists is one that reproduces its checkpoint. Written into a temporary folder next to --out and
renamed, so --out is never half-written.

Person and both feature modes are refused: their features need the ultralytics person detector and tracker (torch).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..utils.errors import UsageError
from .runtime import (BACKBONE_FILE, FORMAT_VERSION, HEAD_FILE, HEAD_INPUTS, HEAD_OUTPUTS, MANIFEST, BundlePredictor,
                      sha256)

OPSET = 17  # of head.onnx (LayerNormalization needs 17); backbone.onnx keeps the opset it was exported with
PARITY_TOL = 1e-4  # window probabilities, bundle vs checkpoint


class ExportError(UsageError):
    """A checkpoint that cannot be exported, or an --out that cannot take the bundle."""


class StepHead(nn.Module):
    """ActionLSTM from an explicit state: (features (B,T,D), prev (B,D), h0, c0) -> (probs (B,C), hn, cn)."""

    def __init__(self, net):
        super().__init__()
        self.net = net.eval()

    def forward(self, features, prev, h0, c0):
        out, (hn, cn) = self.net.lstm(self.net.embed(features, prev), (h0, c0))
        return self.net.head(out[:, -1]).softmax(-1), hn, cn


def _export_head(net, feature_dim: int) -> bytes:
    import io

    layers, hidden = net.lstm.num_layers, net.lstm.hidden_size
    g = torch.Generator().manual_seed(0)
    example = (torch.randn(2, 3, feature_dim, generator=g), torch.randn(2, feature_dim, generator=g),
               torch.zeros(layers, 2, hidden), torch.zeros(layers, 2, hidden))  # batch 2, time 3: nothing specialises
    batch = {"features": {0: "batch", 1: "time"}, "prev": {0: "batch"}, "h0": {1: "batch"}, "c0": {1: "batch"},
             "probs": {0: "batch"}, "hn": {1: "batch"}, "cn": {1: "batch"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and LSTM batch_first notes
        # .eval() on the wrapper: the exporter restores the mode the module it is given had (a new Module is in
        # training mode), which would switch the checkpoint's dropout on for whoever uses `net` afterwards
        torch.onnx.export(StepHead(net).eval(), example, buffer, input_names=list(HEAD_INPUTS),
                          output_names=list(HEAD_OUTPUTS), dynamic_axes=batch, opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


def _backbone_bytes(backbone) -> bytes:
    """The ONNX graph the checkpoint path runs (onnx_runtime's cached or in-memory file), else a fresh export."""
    from ..backbones.onnx_runtime import export

    onnx_net = getattr(backbone, "_onnx", None)
    if onnx_net is not None:
        model = onnx_net.model
        return model if isinstance(model, bytes) else Path(model).read_bytes()
    p = backbone.preprocess
    return export(backbone.net, int(p.size), None, dynamic_hw=p.resize == "rect")


def _graph_info(path: Path) -> dict:
    """Opset and input/output names, element types and shapes (symbolic axes by name) of an ONNX file."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    types = {v: k for k, v in onnx.TensorProto.DataType.items()}

    def io(values):
        return {v.name: {"dtype": types.get(v.type.tensor_type.elem_type, "?").lower(),
                         "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]}
                for v in values}

    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset, "inputs": io(m.graph.input), "outputs": io(m.graph.output)}


def check_out(out: str | os.PathLike, force: bool) -> Path:
    """--out may be new, an empty folder, or (with --force) an existing bundle; never a file or another folder."""
    from ..utils.pathcheck import check_folder_target

    p = Path(out)
    check_folder_target(p, "--out")
    if p.is_dir() and any(p.iterdir()):
        if not (p / MANIFEST).is_file():
            raise ExportError(f"--out {p}: a non-empty folder that is not a bundle; choose a new or empty folder "
                              "(--force replaces only an earlier bundle)")
        if not force:
            raise ExportError(f"--out {p}: a bundle is already there; add --force to replace it, or choose another "
                              "folder")
    return p


def _checkpoint_backbone(ckpt) -> dict:
    from ..inference.predictor import load_classifier

    return load_classifier(ckpt).hparams.data_spec["backbone"]


def _refuse_feature_mode(backbone: dict, what) -> None:
    mode = backbone.get("features", "frame")
    if backbone.get("backbone") == "mediapipe_pose":
        raise ExportError(f"{what}: its mediapipe_pose backbone is a LiteRT network, not an ONNX graph, so it cannot "
                          "go into a bundle; run this one with `action-rec label/live --ckpt` on the full install")
    if mode != "frame":
        raise ExportError(f"{what}: trained with features: {mode}, which needs the ultralytics person detector and "
                          "tracker (PyTorch) at inference, so it cannot run torch-free; export supports whole-frame "
                          "checkpoints (features: frame); run this one with `action-rec label/live --ckpt` on the "
                          "full install")


def manifest(pred, ckpt_path: Path | None) -> dict:
    net, bb, spec = pred.model.net, pred.backbone, pred.model.hparams.data_spec
    ident = bb.identity()
    r = pred.rule
    point = getattr(pred.model, "operating_point", None)
    return {
        "format_version": FORMAT_VERSION,
        "exported_by": f"action_rec {__version__}",
        "checkpoint": None if ckpt_path is None else {"name": ckpt_path.name, "sha256": sha256(ckpt_path)},
        "classes": list(pred.class_names),
        "fps": float(pred.fps),
        "window": int(pred.window),
        "default_stride": max(1, int(pred.window) // 2),
        "padding": spec.get("padding", "repeat_last"),
        "regions": dict(spec.get("regions") or {}),  # frame size -> x0,y0,x1,y1 to read (video/region.py)
        "features": "frame",
        "feature_dim": int(ident["feature_dim"]),
        "backbone": {k: ident[k] for k in ("backbone", "weights", "precision", "quant_version") if k in ident}
        | {"precision": ident.get("precision", "fp32")},
        "preprocess": {**bb.preprocess.to_dict(), "colour": "RGB", "layout": "NCHW float32 = (pixel - mean) / std"},
        "fall_rule": {"fall_class": r.fall_class, "threshold": float(r.threshold), "k": int(r.k), "m": int(r.m)},
        "operating_point": dict(point) if point else None,
        "lstm": {"layers": int(net.lstm.num_layers), "hidden": int(net.lstm.hidden_size),
                 "input": int(net.lstm.input_size), "motion_features": bool(net.motion)},
    }


def _check_parity(bundle: Path, pred, frames: list[np.ndarray]) -> None:
    """The bundle reproduces the checkpoint: features, window probabilities, and step == window graph."""
    got = BundlePredictor(bundle, threads=1)
    f_ckpt, f_bundle = pred.backbone.embed(frames), got.backbone.embed(frames)
    scale = float(np.abs(f_ckpt).max()) + 1e-12
    if float(np.abs(f_ckpt - f_bundle).max()) > 1e-3 * scale:
        raise RuntimeError("export check: backbone.onnx features differ from the checkpoint's backbone")
    rng = np.random.default_rng(0)
    feats = (rng.standard_normal((3 * pred.window + 1, f_ckpt.shape[1])) * f_ckpt.std() + f_ckpt.mean()).astype(
        np.float32)
    p_ckpt, _ = pred.window_probs(feats)
    p_bundle, _ = got.window_probs(feats)
    if float(np.abs(p_ckpt - p_bundle).max()) > PARITY_TOL:
        raise RuntimeError(f"export check: head.onnx window probabilities differ from the checkpoint's by "
                           f"{float(np.abs(p_ckpt - p_bundle).max()):.2e} (> {PARITY_TOL:g})")
    steps = got.streaming_classifier(pred.window, pred.window)
    first = [r for f in feats[:pred.window] for r in steps.push(f)]
    if not first or float(np.abs(first[0].probs - p_bundle[0]).max()) > PARITY_TOL:
        raise RuntimeError("export check: head.onnx stepped frame by frame differs from the whole window")


def export_bundle(ckpt, out: str | os.PathLike, force: bool = False) -> dict:
    """Write the bundle of ``ckpt`` (a checkpoint path, or an inference.Predictor) into ``out``; returns bundle.json.
    Raises ExportError / CheckpointError (UsageErrors) for what the user can fix."""
    from ..inference.predictor import Predictor

    out = check_out(out, force)
    if isinstance(ckpt, Predictor):
        pred, ckpt_path = ckpt, None
        _refuse_feature_mode(pred.model.hparams.data_spec["backbone"], "the predictor")
    else:
        ckpt_path = Path(ckpt)
        _refuse_feature_mode(_checkpoint_backbone(ckpt_path), ckpt_path)  # before building a detector
        pred = Predictor(ckpt_path, device="cpu")
    pred.model.cpu().eval()
    meta = manifest(pred, ckpt_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        (tmp / BACKBONE_FILE).write_bytes(_backbone_bytes(pred.backbone))
        (tmp / HEAD_FILE).write_bytes(_export_head(pred.model.net, meta["feature_dim"]))
        meta["graphs"] = {name: _graph_info(tmp / name) for name in (BACKBONE_FILE, HEAD_FILE)}
        meta["files"] = {name: sha256(tmp / name) for name in (BACKBONE_FILE, HEAD_FILE)}
        (tmp / MANIFEST).write_text(json.dumps(meta, indent=2) + "\n")
        from ..backbones.calibration import calibration_frames

        _check_parity(tmp, pred, calibration_frames(8))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; a bundle is shared like any output folder
        old = None
        if out.exists():  # an empty folder, or an earlier bundle (--force): moved aside, removed once replaced
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "bundle")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def bundle_size(folder: str | os.PathLike) -> int:
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.is_file())
