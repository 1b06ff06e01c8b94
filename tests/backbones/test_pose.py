import pickle
from pathlib import Path

import numpy as np
import pytest

from action_rec.backbones import pose
from action_rec.backbones.pose import KEY_POINTS, ROW_DIM, ROW_VERSION, find_pose_model, pose_row
from action_rec.utils.errors import BackboneWeightsError

K = len(KEY_POINTS)


def standing(size=256.0):
    """33 landmarks (x, y, z, visibility logit, presence logit) of an upright person centred in a size-px crop."""
    lm = np.zeros((33, 5), np.float32)
    lm[:, 3] = 4.0  # visible
    x, top, bottom = size / 2, 0.15 * size, 0.9 * size
    at = {0: (x, top), 11: (x - 20, top + 30), 12: (x + 20, top + 30), 13: (x - 25, top + 70), 14: (x + 25, top + 70),
          15: (x - 28, top + 105), 16: (x + 28, top + 105), 23: (x - 12, top + 110), 24: (x + 12, top + 110),
          25: (x - 12, top + 150), 26: (x + 12, top + 150), 27: (x - 12, bottom), 28: (x + 12, bottom)}
    for i, (px, py) in at.items():
        lm[i, :2] = px, py
    return lm


def rotated(lm, degrees, size=256.0):
    a = np.deg2rad(degrees)
    c = np.array([size / 2, size / 2])
    out = lm.copy()
    d = lm[:, :2] - c
    out[:, :2] = c + d @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return out


def test_row_reads_upright_and_lying_people_apart_whatever_their_size():
    up = pose_row(standing(), 0.99, 256)
    assert up.shape == (ROW_DIM,) and up[0] == pytest.approx(0.99)
    sin, cos, log_hw = up[-3:]
    assert abs(sin) < 0.05 and cos > 0.99 and log_hw > 0.5  # shoulders above hips, taller than wide
    lying = pose_row(rotated(standing(), 90), 0.99, 256)
    assert abs(lying[-3]) > 0.99 and abs(lying[-2]) < 0.05 and lying[-1] < -0.5
    # the key points relative to the hips in torso lengths: the same person twice as large, or in a 512-px input
    # the same row
    big = standing()
    big[:, :2] = (big[:, :2] - 128) * 2 + 256
    np.testing.assert_allclose(pose_row(big, 0.99, 512), up, atol=1e-5)
    np.testing.assert_allclose(up[1 + 2 * K:1 + 3 * K], 1 / (1 + np.exp(-4.0)), atol=1e-6)  # visibilities
    hips = [2 * KEY_POINTS.index(23) + 1, 2 * KEY_POINTS.index(24) + 1]
    assert up[hips[0]] == pytest.approx(-up[hips[1]]) and up[hips[0] + 1] == pytest.approx(0)  # about the hip centre


def test_no_pose_is_zeros_but_its_score():
    row = pose_row(standing(), 0.2, 256)
    assert row[0] == pytest.approx(0.2) and not row[1:].any()


def test_missing_or_corrupt_model_says_how_to_get_it(monkeypatch, tmp_path):
    from action_rec.backbones.registry import build_backbone

    with pytest.raises(BackboneWeightsError, match=r"pose model not found: /nope.tflite; `pip install --no-deps "
                                                   r"mediapipe==0.10.14`"):
        build_backbone("mediapipe_pose", weights="/nope.tflite")
    monkeypatch.setattr(pose, "find_pose_model", lambda: None)
    with pytest.raises(BackboneWeightsError, match="needs pose_landmark_full.tflite: `pip install --no-deps"):
        build_backbone("mediapipe_pose")
    with pytest.raises(BackboneWeightsError, match="no random initialisation"):
        build_backbone("mediapipe_pose", weights="random")
    pytest.importorskip("ai_edge_litert")
    corrupt = tmp_path / "pose_landmark_full.tflite"
    corrupt.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(BackboneWeightsError, match="is not a readable TFLite model"):
        build_backbone("mediapipe_pose", weights=str(corrupt))
    if pose.openvino_available():  # OpenVINO is never handed a file without the TFLite header: a one-line error
        monkeypatch.setenv(pose.RUNTIME_ENV, "openvino")
        with pytest.raises(BackboneWeightsError, match="is not a readable TFLite model \\(no TFLite header\\)") as e:
            build_backbone("mediapipe_pose", weights=str(corrupt))
        assert "\n" not in str(e.value)
        monkeypatch.delenv(pose.RUNTIME_ENV)
    with pytest.raises(BackboneWeightsError, match="takes 256-px crops"):
        build_backbone("mediapipe_pose", weights="/nope.tflite", image_size=224)


needs_model = pytest.mark.skipif(find_pose_model() is None, reason="mediapipe's pose model file is not installed")


@needs_model
def test_the_network_runs_offline_in_fp32_and_in_a_worker_process():
    pytest.importorskip("ai_edge_litert")
    from action_rec.backbones.base import BackbonePrecisionError
    from action_rec.backbones.registry import build_backbone
    from action_rec.synth import render_clip

    b = build_backbone("mediapipe_pose", precision="auto")
    assert b.precision == "fp32" and b.feature_dim == ROW_DIM and b.identity()["weights"].endswith(f":rows{ROW_VERSION}")
    with pytest.raises(BackbonePrecisionError, match="without an INT8 version"):
        build_backbone("mediapipe_pose", precision="int8")
    blank = np.full((240, 160, 3), 90, np.uint8)
    clip, _ = render_clip("walking", seed=3)
    frames = [blank, *(np.ascontiguousarray(f[..., ::-1]) for f in clip[:3])]
    rows = b.embed(frames)
    assert rows.shape == (4, ROW_DIM) and rows.dtype == np.float32 and np.isfinite(rows).all()
    assert rows[0, 0] < 0.5 and not rows[0, 1:].any()  # nobody in a flat grey frame: "no pose"
    assert ((0 <= rows[:, 0]) & (rows[:, 0] <= 1)).all()
    again = pickle.loads(pickle.dumps(b.worker_embedder(threads=1)))  # what label's worker processes get
    np.testing.assert_allclose(again.embed(frames), rows, atol=1e-5)


@needs_model
def test_openvino_reads_a_crop_as_litert_does_so_the_runtime_is_not_in_the_identity(monkeypatch):
    """The pose network runs in OpenVINO (fp32, its unused mask and heatmap outputs pruned) when it is installed, else
    in LiteRT: the same landmarks to well under a pixel, the same score, the same identity, so caches and checkpoints
    made with either serve both."""
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("openvino")
    from action_rec.backbones.registry import build_backbone
    from action_rec.synth import render_clip

    images = []
    for action in ("walking", "falling"):
        clip, _ = render_clip(action, seed=3)
        images += [np.ascontiguousarray(f[..., ::-1]) for f in clip[::12]]
    nets, ids = {}, {}
    for runtime in ("litert", "openvino"):
        monkeypatch.setenv(pose.RUNTIME_ENV, runtime)
        b = build_backbone("mediapipe_pose")
        assert b.net.runtime == runtime
        nets[runtime], ids[runtime] = b, b.identity()
    assert ids["litert"] == ids["openvino"]
    confident = 0
    for image in images:
        crop = nets["litert"].preprocess.fitted([image])[0].astype(np.float32) / 255
        (la, sa), (lb, sb) = (nets[r].net.landmarks(crop) for r in ("litert", "openvino"))
        np.testing.assert_allclose(lb[:, :2], la[:, :2], atol=0.05)  # pixels of a 256-px crop
        np.testing.assert_allclose(lb[:, 3], la[:, 3], atol=1e-2)  # visibility logits
        assert sb == pytest.approx(sa, abs=1e-4)
        confident += sa > 0.5
    assert confident >= 2  # some crops hold a pose: the comparison is not only of empty readings
    np.testing.assert_allclose(nets["openvino"].embed(images[:4]), nets["litert"].embed(images[:4]), atol=1e-3)


@needs_model
def test_crops_read_together_get_the_rows_they_get_alone():
    """PoseBackbone.embed runs every crop's first looks at once, then the second looks, and OpenVINO keeps several in
    flight on streams of one thread each: each crop's row is still the row of that crop read alone."""
    pytest.importorskip("openvino")
    from action_rec.backbones.registry import build_backbone
    from action_rec.synth import render_clip

    frames = []
    for action in ("walking", "falling", "running"):
        clip, _ = render_clip(action, seed=5)
        frames += [np.ascontiguousarray(f[..., ::-1]) for f in clip[::10]]
    frames += [f[f.shape[0] // 3:] for f in frames[:3]]  # wider than tall: also read turned a quarter each way
    b = build_backbone("mediapipe_pose")
    b.net.threads = 2  # streams of one thread each, also on a one-core machine
    sizes = []
    looks = b.net.looks
    b.net.looks = lambda images: sizes.append(len(images)) or looks(images)
    together = b.embed(frames)
    assert b.net.runtime != "litert" and hasattr(b.net.runner(), "many")
    assert sizes[0] == len(frames) + 3 and len(sizes) == 2 and sizes[1] > 0  # turned looks, then some second looks
    alone = np.stack([b.embed([f])[0] for f in frames])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert (together[:, 0] > 0.5).any()  # some crops hold a confident pose: not only empty readings compared


def test_an_unknown_or_missing_pose_runtime_is_a_one_line_error(monkeypatch):
    from action_rec.utils.errors import UsageError

    monkeypatch.setenv(pose.RUNTIME_ENV, "tensorrt")
    with pytest.raises(UsageError, match="pose runtime must be one of auto, litert, openvino, got 'tensorrt'"):
        pose.PoseNet(Path("unused.tflite"))
    monkeypatch.delenv(pose.RUNTIME_ENV)
    monkeypatch.setattr(pose, "openvino_available", lambda: False)
    with pytest.raises(UsageError, match="needs the openvino package"):
        pose.PoseNet(Path("unused.tflite"), runtime="openvino").runner()
    net = pose.PoseNet(Path("unused.tflite"))
    assert net.runtime == "auto"
    monkeypatch.setattr(pose, "litert_runner", lambda path, threads: ("litert", path, threads))
    assert net.runner() == ("litert", "unused.tflite", net.threads or __import__("torch").get_num_threads())


REALTRAIN = Path(__file__).resolve().parents[3] / "shared" / "realtrain"


@needs_model
@pytest.mark.skipif(not (REALTRAIN / "MANIFEST.csv").exists(), reason="../shared/realtrain not present")
def test_a_real_walker_is_an_upright_pose_and_a_fallen_one_is_not():
    """Real footage (read, never copied): the tracked person's crop of a walker gives a confident upright pose, the
    end of a fall a pose far from upright. Crops are cut by the person features' own detector and tracker."""
    pytest.importorskip("ai_edge_litert")
    from action_rec.backbones.registry import build_backbone
    from action_rec.features.person import PersonFeatures
    from action_rec.video import iter_sampled

    features = PersonFeatures(build_backbone("mediapipe_pose"), "person")
    rows = {}
    for name in ("walking/Furkan-Gulsen__Sport-With-AI__videos_walk.mp4",
                 "falling/cwlroda__falldetection_openpifpaf__test_input_fall-01-cam0.mp4"):
        clip = REALTRAIN / name
        if not clip.exists():
            pytest.skip(f"{clip} not present")
        frames = [f for _, f in iter_sampled(clip, 2.0)]
        rows[name.split("/")[0]] = features.embed(frames)[:, :ROW_DIM]
    walk = rows["walking"][rows["walking"][:, 0] > 0.5]
    assert len(walk) > 0.8 * len(rows["walking"]) and np.median(walk[:, -2]) > 0.9  # cos of the torso angle
    fell = rows["falling"][-3:]  # lying on the floor at the end
    fell = fell[fell[:, 0] > 0.5]
    assert len(fell) and np.median(fell[:, -2]) < 0.7


@pytest.mark.parametrize("k", [0, 1, 3])
def test_landmarks_found_on_a_turned_crop_are_turned_back_onto_the_crop(k):
    """PoseNet.row runs wide crops turned a quarter: a point found at (x, y) of np.rot90(image, k) must map back to
    where that pixel is in the image itself."""
    size, (x, y) = 8, (2, 5)
    image = np.zeros((size, size)); image[y, x] = 1
    ty, tx = np.argwhere(np.rot90(image, k))[0]
    lm = np.zeros((33, 5), np.float32)
    lm[0, :2] = tx + 0.5, ty + 0.5  # pixel centres: the continuous coordinates the network gives
    back = pose._turn_back(lm, k, size)
    np.testing.assert_allclose(back[0, :2], [x + 0.5, y + 0.5])


def aligned(lm, size=256.0):
    """`lm` with MediaPipe's two alignment points: 33 the hip centre, 34 at 0.4 x size above it in the body's
    direction, which makes the ROI (2.5 x their distance) exactly the size of the crop."""
    out = np.zeros((39, 5), np.float32)
    out[:33] = lm
    hip, shoulder = lm[[23, 24], :2].mean(0), lm[[11, 12], :2].mean(0)
    up = (shoulder - hip) / np.linalg.norm(shoulder - hip)
    out[33, :2], out[34, :2] = hip, hip + 0.4 * size * up
    return out


def test_the_roi_is_mediapipes_square_turned_upright_and_none_when_the_crop_already_is_it():
    size = 256
    lm = aligned(standing())
    lm[:, 1] += 128 - lm[33, 1]  # hips at the centre
    assert pose.roi_from_landmarks(lm, size) is None  # upright, centred, right size: a second look is the same
    tilted = rotated(lm, 40)
    m = pose.roi_from_landmarks(tilted, size)
    assert m is not None
    np.testing.assert_allclose(pose._apply(m, np.array([[128.0, 128.0, 0, 0, 0]]))[0, :2], tilted[33, :2],
                               atol=1e-3)  # the ROI's centre is the hip centre
    np.testing.assert_allclose(pose._apply(m, np.array([[128.0, 128 - 0.4 * size, 0, 0, 0]]))[0, :2],
                               tilted[34, :2], atol=1e-3)  # and straight up in it is the body's direction
    small = lm.copy()
    small[:, :2] = (small[:, :2] - 128) * 0.5 + 128  # a person half the crop's size: look closer
    assert np.linalg.det(pose.roi_from_landmarks(small, size)[:, :2]) == pytest.approx(0.25, rel=1e-3)


def test_a_point_seen_in_the_roi_maps_back_to_the_same_pixel_of_the_crop():
    """The second look warps the crop (_warp, cv2) and maps landmarks back (_apply): both must use the matrix the
    same way round, to the pixel."""
    size = 256
    m = pose.roi_from_landmarks(rotated(aligned(standing()), 65), size)
    x, y = np.round(pose._apply(m, np.array([[100.0, 90, 0, 0, 0]]))[0, :2]).astype(int)  # inside the ROI
    image = np.zeros((size, size), np.float32)
    image[y - 1:y + 2, x - 1:x + 2] = 1  # a 3x3 spot centred on pixel (x, y), i.e. on (x + 0.5, y + 0.5)
    seen = pose._warp(image, m)
    ys, xs = np.nonzero(seen > 0.5 * seen.max())
    spot = np.array([[xs.mean() + 0.5, ys.mean() + 0.5, 0, 0, 0]])
    np.testing.assert_allclose(pose._apply(m, spot)[0, :2], [x + 0.5, y + 0.5], atol=0.3)


def test_row_keeps_the_second_look_only_when_it_scores_as_well_and_maps_it_back(monkeypatch):
    """A stand-in network: the first look finds a body tilted 40 degrees, the second (in the upright ROI) an
    upright one. Mapped back, the row's torso is tilted 40 degrees again; a worse-scoring second look is dropped."""
    size = 256
    first = rotated(aligned(standing()), 40)
    second = aligned(standing())
    for second_score, expect in ((0.97, 0.97), (0.6, 0.9)):
        looks = iter([(first, 0.9), (second, second_score)])
        net = pose.PoseNet(Path("unused.tflite"))
        monkeypatch.setattr(net, "landmarks", lambda image: next(looks))
        row = net.row(np.zeros((size, size, 3), np.float32))
        assert row[0] == pytest.approx(expect)
        assert np.rad2deg(np.arctan2(row[-3], row[-2])) == pytest.approx(40, abs=2)
    looks = iter([(first, 0.3)])  # no confident first pose: no second look (next() would raise)
    net = pose.PoseNet(Path("unused.tflite"))
    monkeypatch.setattr(net, "landmarks", lambda image: next(looks))
    assert net.row(np.zeros((size, size, 3), np.float32))[0] == pytest.approx(0.3)


def test_the_mirror_map_gives_the_row_of_the_mirrored_person():
    """pose.mirror_row: the row of a person seen in a mirror (x flipped, anatomical left and right swapped, as the
    network labels them) is the row's permutation and sign flip, so data.mirror can train on mirrored windows."""
    size = 256.0
    lm = rotated(standing(size), 25)  # leaning: the torso angle's sin flips in the mirror
    lm[15, :2] += (30, -40)           # one arm raised: left and right differ
    lm[23:29:2, 3] = -2.0             # the left hip, knee and ankle half hidden: visibilities differ too
    seen = lm.copy()
    seen[:, 0] = size - lm[:, 0]
    for a, b in ((11, 12), (13, 14), (15, 16), (23, 24), (25, 26), (27, 28)):
        seen[[a, b]] = seen[[b, a]]
    perm, sign = pose.mirror_row()
    row = pose_row(lm, 0.9, size)
    np.testing.assert_allclose(pose_row(seen, 0.9, size), row[perm] * sign, atol=1e-5)
    assert sorted(perm) == list(range(ROW_DIM)) and not np.allclose(row[perm] * sign, row)
