"""Backbones: frozen per-frame feature extractors. Take RGB uint8 frames; hand on one pooled float32 vector per
frame and an identity (name, weights, preprocessing, precision) that keys the feature cache and checkpoints.

registry.build_backbone picks a family (efficientnet, resnet, yolo, mobilenet: one module each), loads its weights
(weights) and wraps it in base.Backbone, which folds batch norms (folding), preprocesses frames (preprocess) and runs
the network in PyTorch or, on CPU, ONNX Runtime (onnx_runtime; INT8 calibrated on calibration's fixed frames).
preprocess and onnx_runtime import torch only when exporting, so the torch-free runtime uses them too.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".base": "Backbone BackbonePrecisionError DEFAULT_BATCH_SIZE IMAGENET_MEAN IMAGENET_STD int8_fix int8_problem",
    ".calibration": "calibration_frames",
    ".preprocess": "Preprocess",
    ".registry": "build_backbone list_backbones",
    ".yolo": "FALL_DETECTION find_fall_detection_checkpoint",
    "action_rec.utils.errors": "BackboneWeightsError",
})
