"""Export (`action-rec export`): takes a checkpoint; hands on a bundle folder (backbone.onnx, head.onnx,
bundle.json) checked against it (bundle), and runs a bundle with numpy, OpenCV and ONNX Runtime only (runtime),
for `label` and `live --ckpt BUNDLE/` on a machine without torch. runtime must never import torch, directly or
through a package __init__: this file only lists lazy exports.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".bundle": "ExportError OPSET PARITY_TOL StepHead bundle_size check_out export_bundle manifest",
})
