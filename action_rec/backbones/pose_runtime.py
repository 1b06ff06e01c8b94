"""Running MediaPipe's pose landmark network (a .tflite file): OpenVINO, or Google's LiteRT where OpenVINO is not
installed. A runner takes one image, x (1, S, S, 3) float32 in [0, 1] -> ((33, 5) landmarks, pose score).

OpenVINO's runner also has `many(xs)`: the looks of several crops (every tracked person's, each crop's turned and
second looks) kept in flight at once on streams of one thread each. One small image on two threads leaves the cores
half idle: on 2 cores 400 real crops' looks took 4.1 against 7.2 ms each (`python scripts/bench_pose.py` compares
the two ways per crop). Each look runs alone on its stream; its numbers were the one-by-one runner's to the bit.
"""

from __future__ import annotations

import numpy as np

from ..utils.errors import BackboneWeightsError

MODEL_FILE = "pose_landmark_full.tflite"
OUTPUTS = ("Identity", "Identity_1")  # the network's landmarks (33 x 5) and pose score
INSTALL = ("`pip install --no-deps mediapipe==0.10.14` (its wheel ships the model file; works offline afterwards), "
           f"or --data.weights <a local {MODEL_FILE}>")


def litert_runner(path: str, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise BackboneWeightsError("the mediapipe_pose backbone runs on OpenVINO or LiteRT: `pip install openvino` or "
                                   "`pip install ai-edge-litert`") from e
    try:
        interp = Interpreter(model_path=path, num_threads=threads)
    except (ValueError, RuntimeError) as e:  # not a TFLite flatbuffer: a corrupt or wrong file
        raise BackboneWeightsError(f"{path} is not a readable TFLite model ({str(e).strip()[:200]}); {INSTALL}") from e
    interp.allocate_tensors()
    image_in = interp.get_input_details()[0]["index"]
    out = {d["name"]: d["index"] for d in interp.get_output_details()}

    def run(x: np.ndarray):
        interp.set_tensor(image_in, x)
        interp.invoke()
        landmarks, score = (interp.get_tensor(out[name]) for name in OUTPUTS)
        return landmarks.reshape(-1, 5).copy(), float(score.ravel()[0])
    return run


def _read(landmarks, score) -> tuple[np.ndarray, float]:
    return np.array(landmarks, np.float32).reshape(-1, 5), float(np.asarray(score).ravel()[0])


class OpenVINORunner:
    """OpenVINO reads the .tflite itself. Only the landmarks and the score are kept: the network's segmentation mask
    and heatmaps, which nothing here reads, are pruned, a third of its work (12 against 17 ms a crop on one core).
    fp32, as for the detector: its rows are within 3e-3 of LiteRT's on real crops, so the runtime is not in the
    features' identity."""

    def __init__(self, path: str, threads: int):
        from .openvino_core import core, cpu_config

        self.model, self.threads = _read_pose_model(core(), path), int(threads)
        self.compiled = core().compile_model(self.model, "CPU", cpu_config(self.threads))
        self.request = self.compiled.create_infer_request()
        self._queue = None

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        r = self.request.infer({0: x})
        return _read(r[self.compiled.outputs[0]], r[self.compiled.outputs[1]])

    def many(self, xs: list[np.ndarray]) -> list[tuple[np.ndarray, float]]:
        """The runner on each of xs, several at once when there are threads to spare."""
        if len(xs) < 2 or self.threads < 2:
            return [self(x) for x in xs]
        if self._queue is None:
            import openvino as ov

            from .openvino_core import core, cpu_config

            config = {k: v for k, v in cpu_config(self.threads).items() if k != "PERFORMANCE_HINT"}
            compiled = core().compile_model(self.model, "CPU", {**config, "NUM_STREAMS": self.threads})
            self._queue = ov.AsyncInferQueue(compiled, 2 * self.threads)  # two per stream: one waits while one runs
        out: list = [None] * len(xs)

        def done(request, i):
            out[i] = _read(request.get_output_tensor(0).data, request.get_output_tensor(1).data)
        self._queue.set_callback(done)
        for i, x in enumerate(xs):
            self._queue.start_async({0: x}, i)
        self._queue.wait_all()
        return out


def _read_pose_model(core, path: str):
    """The network with only our two outputs. Only a TFLite flatbuffer (its identifier "TFL3" at byte 4) goes to
    OpenVINO: given another file, it tries all its readers (TensorFlow's among them), which print their own errors."""
    import openvino as ov

    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise BackboneWeightsError(f"cannot read the pose model {path}: {e.strerror}; {INSTALL}") from e
    if head[4:8] != b"TFL3":
        raise BackboneWeightsError(f"{path} is not a readable TFLite model (no TFLite header); {INSTALL}")
    try:
        model = core.read_model(path)
    except RuntimeError as e:
        first = next((ln for ln in str(e).splitlines() if ln.strip() and "Exception from" not in ln), str(e))
        raise BackboneWeightsError(f"{path} is not a readable TFLite model ({first.strip()[:200]}); {INSTALL}") from e
    outputs = {o.get_any_name(): o for o in model.outputs}
    if not all(name in outputs for name in OUTPUTS):
        raise BackboneWeightsError(f"{path} has no outputs {OUTPUTS} (found {sorted(outputs)}): not MediaPipe's pose "
                                   f"landmark model; {INSTALL}")
    return ov.Model([outputs[n] for n in OUTPUTS], model.get_parameters())
