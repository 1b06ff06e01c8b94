"""`action-rec evaluate` on a dataset whose predictions are known exactly, checked against hand-computed
metrics.

The checkpoint is rewired so its LSTM forgets everything but the last frame of a window and names the
class whose feature coordinate is hot there (class c <-> feature c); the clips' features are written into
the feature cache beforehand, so each window's prediction is chosen frame by frame. Everything after the
cache (windowing, the shared decision rule, metrics, files) runs for real.
"""

import csv
import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from action_rec.backbones import build_backbone
from action_rec.cli import main
from action_rec.data.datasets import assign_splits, discover
from action_rec.data.items import DatasetError
from action_rec.evaluation import evaluate, load_eval_set
from action_rec.features import FeatureCache

NAMES = ["falling", "running", "walking"]
F, R, W = 0, 1, 2
FPS, WINDOW = 4.0, 6


def rewire(path):
    """Window prediction = class of the hot feature coordinate of the window's last frame, p ~ 0.99."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    sd = ckpt["state_dict"]
    for k in sd:
        if k.startswith("net."):
            sd[k] = torch.zeros_like(sd[k])
    sd["net.proj.weight"][:3, :3] = torch.eye(3)  # reads the feature, ignores the motion half
    sd["net.norm.weight"][:] = 1.0
    for layer in (0, 1):
        h = sd[f"net.lstm.bias_ih_l{layer}"].numel() // 4  # gate order: input, forget, cell, output
        bias = sd[f"net.lstm.bias_ih_l{layer}"]
        bias[:h], bias[h:2 * h], bias[3 * h:] = 10.0, -10.0, 10.0  # input/output open, forget shut
        sd[f"net.lstm.weight_ih_l{layer}"][2 * h:2 * h + 3, :3] = torch.eye(3)
    sd["net.head.weight"][:3, :3] = 10 * torch.eye(3)
    torch.save(ckpt, path)
    return path


@functools.cache
def identity():
    return build_backbone("efficientnet_lite0", weights="random", image_size=64).identity()


def seed(cache_root, video, classes):
    """Cache features for `video`: one frame per entry of `classes`, hot at that class's coordinate."""
    feats = np.zeros((len(classes), identity()["feature_dim"]), np.float32)
    feats[np.arange(len(classes)), classes] = 1.0
    FeatureCache(cache_root, identity(), FPS).save(video, feats, np.arange(len(classes)) / FPS)


# true label -> [(clip name, per-frame classes)]; 8 frames = 2 s at 4 fps
CLIPS = {
    "falling": [("f0", [F] * 8), ("f1", [W] * 8)],
    "running": [("r0", [R] * 8), ("r1", [R] * 8), ("r2", [W] * 8)],
    "walking": [("w0", [W] * 8), ("w1", [R] * 8)],
    # o1: 16 frames; windows (stride 3) end at frames 5, 8, 11, 14, 15 -> windows 1, 2 see a fall: 1 event
    "other": [("o0", [W] * 8), ("o1", [W] * 8 + [F] * 4 + [W] * 4)],
}


@pytest.fixture
def setup(tmp_path, make_checkpoint, make_video):
    ckpt = rewire(make_checkpoint(tmp_path / "model.ckpt", NAMES, fps=FPS, window=WINDOW))
    root, cache = tmp_path / "ds", tmp_path / "cache"
    for i, (label, name, classes) in enumerate((lb, n, c) for lb, clips in CLIPS.items() for n, c in clips):
        # as long as its cached features (len(classes) frames at FPS): durations come from the video; a seed of its
        # own, as the cache keys entries by the video's bytes (identical clips would share one entry)
        v = make_video(root / label / f"{name}.mp4", n_frames=len(classes), fps=FPS, seed=i)
        seed(cache, v, classes)
    return ckpt, root, cache


def test_metrics_equal_hand_computed(setup, tmp_path):
    ckpt, root, cache = setup
    (root / "walking" / "broken.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "report"
    r = evaluate(ckpt, root, out, cache_dir=str(cache), progress=False)

    # rows true, columns predicted: f0 F, f1 W | r0 R, r1 R, r2 W | w0 W, w1 R
    assert r["confusion_matrix"] == [[1, 0, 1], [0, 2, 1], [0, 1, 1]]
    assert r["accuracy"] == pytest.approx(4 / 7)
    pc = r["per_class"]
    assert [pc[c]["precision"] for c in NAMES] == pytest.approx([1, 2 / 3, 1 / 3])
    assert [pc[c]["recall"] for c in NAMES] == pytest.approx([1 / 2, 2 / 3, 1 / 2])
    assert [pc[c]["f1"] for c in NAMES] == pytest.approx([2 / 3, 2 / 3, 2 / 5])
    assert [pc[c]["support"] for c in NAMES] == [2, 3, 2]
    assert r["macro_f1"] == pytest.approx(26 / 45)
    assert r["macro_f1_without_other"] is None  # no `other` class: macro-F1 is already over the actions

    fall = r["fall"]
    assert (fall["fall_clips"], fall["detected"], fall["sensitivity"]) == (2, 1, 0.5)
    assert (fall["alerted"], fall["alert_recall"]) == (1, 0.5)  # f0's two fall windows make an event
    # non-fall clips: 3 running, 2 walking, 2 other; o1 is labelled falling
    assert (fall["non_fall_clips"], fall["false_positive_clips"]) == (7, 1)
    assert fall["specificity"] == pytest.approx(6 / 7)
    # one event (in o1) over 6 x 2 s + 4 s of non-fall video
    assert fall["false_alerts"] == 1 and fall["false_alerts_per_hour"] == pytest.approx(1 / (16 / 3600))

    assert r["unknown_classes"] == {"other": {"clips": 2, "predicted": {"walking": 1, "falling": 1},
                                              "fall_alerts": 1}}
    assert r["clips"] == {"listed": 10, "scored": 9, "unreadable": 1, "known_class": 7, "unknown_class": 2,
                          "duplicates_dropped": 0}
    assert [u["path"] for u in r["unreadable"]] == [str(root / "walking" / "broken.mp4")]

    # the files: metrics.json is the returned dict, one CSV row per listed clip, PNGs decode
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(r))
    rows = {Path(x["path"]).stem: x for x in csv.DictReader(open(out / "predictions.csv"))}
    assert len(rows) == 10 and rows["broken"]["predicted"] == "" and rows["broken"]["error"]
    assert rows["o1"]["predicted"] == "falling" and rows["o1"]["fall_events"] == "0.75-3.00"
    assert rows["r2"]["predicted"] == "walking" and float(rows["r2"]["p_walking"]) > 0.95
    assert rows["o1"]["duration_s"] == "4.000" and rows["o0"]["known_class"] == "0"
    for png in ("confusion_matrix.png", "per_class.png"):
        img = cv2.imread(str(out / png))
        assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
    md = (out / "report.md").read_text()
    for text in ("efficientnet_lite0", "4 frames/s, window 6 frames", "broken.mp4", "| other | 2 |",
                 "| running | 0 | 2 | 1 |", "0.571", "confusion_matrix.png", "per_class.png",
                 r["dataset"]["fingerprint"]):
        assert text in md, text


def test_relabelled_class_moves_the_confusion(setup, tmp_path):
    """The same clips through a manifest that labels the `other` clips `running`: two more running
    clips, predicted walking (o0) and falling (o1), and no unknown class left."""
    ckpt, root, cache = setup
    lines = [f"{v.relative_to(root)},{'running' if v.parent.name == 'other' else v.parent.name}"
             for v in sorted(root.rglob("*.mp4"))]
    (root / "relabelled.csv").write_text("path,label\n" + "\n".join(lines) + "\n")
    r = evaluate(ckpt, root / "relabelled.csv", tmp_path / "out", cache_dir=str(cache), progress=False)
    assert r["confusion_matrix"] == [[1, 0, 1], [1, 2, 2], [0, 1, 1]]
    assert r["accuracy"] == pytest.approx(4 / 9) and r["unknown_classes"] == {}


def test_cached_features_are_reused(setup, tmp_path, monkeypatch):
    from action_rec.features import cache as features

    ckpt, root, cache = setup
    monkeypatch.setattr(features, "extract_video", lambda *a, **k: pytest.fail("re-extracted"))
    evaluate(ckpt, root, tmp_path / "a", cache_dir=str(cache), progress=False)


def test_config_test_split_is_the_training_split(setup, tmp_path, monkeypatch):
    ckpt, root, cache = setup
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text(f"data:\n  data: {root.name}\n  cache_dir: {cache.name}\n"
                                       "  test_fraction: 0.5\n  val_fraction: 0.2\n  split_seed: 3\n")
    expected = assign_splits(discover(root.name), 0.2, 0.5, seed=3)["test"]
    assert load_eval_set("cfg.yaml").items == expected
    r = evaluate(ckpt, "cfg.yaml", "out", progress=False)  # cache_dir comes from the config
    assert r["dataset"]["split"] == "test" and r["clips"]["listed"] == len(expected) > 0
    assert r["dataset"]["split_settings"]["seed"] == 3


def test_strict_labels_names_the_manifest_line(setup, tmp_path):
    ckpt, root, cache = setup
    m = tmp_path / "m.csv"
    m.write_text(f"path,label\n{root}/falling/f0.mp4,falling\n{root}/other/o0.mp4,walkng\n")
    with pytest.raises(DatasetError, match=r"m.csv:3: label 'walkng' is not a class"):
        evaluate(ckpt, m, tmp_path / "out", cache_dir=str(cache), strict_labels=True, progress=False)
    r = evaluate(ckpt, m, tmp_path / "out", cache_dir=str(cache), progress=False)
    assert r["unknown_classes"]["walkng"]["clips"] == 1


def test_cli_evaluate_and_compare(setup, tmp_path, make_checkpoint, capsys):
    ckpt, root, cache = setup
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", str(root), "--out", str(tmp_path / "one"),
                 "--cache-dir", str(cache)]) == 0
    assert "accuracy 0.571" in capsys.readouterr().out
    # a second checkpoint: every head weight zero, bias for walking -> everything walking
    other = tmp_path / "walker" / "best.ckpt"
    make_checkpoint(other, NAMES, fps=FPS, window=WINDOW)
    sd = torch.load(other, weights_only=True)
    sd["state_dict"]["net.head.weight"].zero_()
    sd["state_dict"]["net.head.bias"][:] = torch.tensor([0.0, 0.0, 5.0])
    torch.save(sd, other)
    out = tmp_path / "cmp"
    assert main(["evaluate", "--compare", str(ckpt), str(other), "--data", str(root), "--out", str(out),
                 "--cache-dir", str(cache)]) == 0
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    assert [r["name"] for r in rows] == ["model", "walker"]
    assert float(rows[1]["accuracy"]) == pytest.approx(2 / 7)  # w0, w1 of the 7 known clips
    assert float(rows[1]["fall_sensitivity"]) == 0 and float(rows[1]["fall_specificity"]) == 1
    assert cv2.imread(str(out / "comparison.png")) is not None
    assert (out / "walker" / "report.md").is_file() and "walker" in (out / "comparison.md").read_text()


def test_missing_checkpoint_and_dataset_are_clear_errors(setup, tmp_path, capsys):
    ckpt, root, _ = setup
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    assert main(["evaluate", "--ckpt", str(tmp_path / "no.ckpt"), "--data", str(root),
                 "--out", str(tmp_path / "o")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written on a failed start


def test_evaluate_draws_the_operating_curve_with_the_checkpoints_point(tmp_path, make_checkpoint, make_video):
    """evaluate sweeps the fall rule on the evaluated clips and marks where the stored operating point lands."""
    import json

    import torch

    from action_rec.decision.operating_point import KS, THRESHOLDS
    from action_rec.evaluation import evaluate

    ck = make_checkpoint(tmp_path / "m.ckpt")
    data = torch.load(ck, weights_only=True)
    data["operating_point"] = {"threshold": 0.35, "k": 1, "recall": 1.0, "false_alerts_per_hour": 0.0,
                               "false_alerts": 0, "detected": 1, "target_false_alerts_per_hour": 20.0,
                               "chosen_on": "validation", "epoch": 3}
    torch.save(data, ck)
    for i, label in enumerate(("falling", "walking", "running")):
        make_video(tmp_path / "ds" / label / f"{label}.mp4", n_frames=30, fps=10, seed=i)
    r = evaluate(ck, tmp_path / "ds", tmp_path / "rep", progress=False)
    assert r["checkpoint"]["rule"]["threshold"] == 0.35 and r["checkpoint"]["rule"]["k"] == 1
    curve = r["operating_curve"]
    assert len(curve["points"]) == len(THRESHOLDS) * len(KS) and curve["chosen_on_validation"]["epoch"] == 3
    here = curve["checkpoint_point"]
    assert (here["threshold"], here["k"]) == (0.35, 1) and here["recall"] in (0.0, 1.0)
    png = tmp_path / "rep" / "operating_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "operating_curve.png" in (tmp_path / "rep" / "report.md").read_text()
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["operating_curve"]["checkpoint_point"] == here


def test_a_clip_listed_twice_counts_once_and_two_labels_are_an_error(setup, tmp_path, capsys):
    ckpt, root, cache = setup
    f0, r0, w0 = root / "falling" / "f0.mp4", root / "running" / "r0.mp4", root / "walking" / "w0.mp4"
    m = tmp_path / "dup.csv"
    m.write_text(f"path,label\n{f0},falling\n{r0},running\n{f0},falling\n{w0},walking\n"
                 f"{root}/running/../running/r0.mp4,running\n")
    r = evaluate(ckpt, m, tmp_path / "out", cache_dir=str(cache), progress=False)
    assert r["clips"]["listed"] == 3 and r["clips"]["scored"] == 3 and r["clips"]["duplicates_dropped"] == 2
    assert sum(map(sum, r["confusion_matrix"])) == 3 and r["accuracy"] == pytest.approx(1.0)
    assert r["duplicates"] == [f"{m}:4: {f0} is listed again (first at {m}:2); counted once",
                               f"{m}:6: {root}/running/../running/r0.mp4 is listed again (first at {m}:3); "
                               "counted once"]
    assert len(list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))) == 3
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", str(m), "--out", str(tmp_path / "o2"),
                 "--cache-dir", str(cache)]) == 0
    cap = capsys.readouterr()
    assert f"action-rec evaluate: warning: {m}:4: {f0} is listed again" in cap.err
    assert "3 of 3 clips scored (0 unreadable)" in cap.out and "2 listed again, counted once" in cap.out

    m.write_text(f"path,label\n{f0},falling\n{r0},running\n{f0},walking\n")
    with pytest.raises(DatasetError, match=rf"dup.csv:4: .*f0.mp4 is labelled 'walking' here but 'falling' at "
                                           rf".*dup.csv:2; a clip has one label"):
        evaluate(ckpt, m, tmp_path / "out", cache_dir=str(cache), progress=False)
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", str(m), "--out", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"action-rec evaluate: error: {m}:4:") and err.count("\n") == 1
    assert not (tmp_path / "o3").exists()


def test_unreadable_or_missing_clips_are_reported_and_exit_1(setup, tmp_path, capsys):
    """Like `label`: the run goes on past bad clips, lists them, and exits 1; a missing file is one of them
    (it used to stop the whole run), and 3 bad clips of 4 are never a silent 'accuracy 1.000'."""
    ckpt, root, cache = setup
    (tmp_path / "text.mp4").write_text("not a video\n" * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    m = tmp_path / "m.csv"
    m.write_text(f"path,label\n{root}/falling/f0.mp4,falling\ntext.mp4,walking\nempty.mp4,running\n"
                 "gone.mp4,walking\n")
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", str(m), "--out", str(tmp_path / "o"),
                 "--cache-dir", str(cache)]) == 1
    out = capsys.readouterr().out
    assert "1 of 4 clips scored (3 unreadable)" in out
    assert f"unreadable: {tmp_path}/gone.mp4: no such file" in out and "empty file" in out
    assert "errors: 3 of 4 clips could not be read; the metrics cover the other 1" in out
    rows = list(csv.DictReader(open(tmp_path / "o" / "predictions.csv")))
    assert len(rows) == 4 and sum(bool(r["error"]) for r in rows) == 3
    # all readable: exit 0
    m.write_text(f"path,label\n{root}/falling/f0.mp4,falling\n")
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", str(m), "--out", str(tmp_path / "o"),
                 "--cache-dir", str(cache)]) == 0


def test_out_that_is_a_file_is_refused_before_any_work(setup, tmp_path, capsys):
    ckpt, root, cache = setup
    (tmp_path / "report").write_text("mine")
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", str(root), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert err == f"action-rec evaluate: error: --out {tmp_path}/report: is a file; give a folder (it is created " \
                  "if missing)\n"
    assert (tmp_path / "report").read_text() == "mine"


def test_duration_is_the_one_label_reports(make_checkpoint, make_video, tmp_path):
    """One definition of a clip's duration: 51 frames at 8 fps are 6.375 s in both `label` and `evaluate`
    (evaluate used to count sampled frames: 26 at 4/s = 6.5 s)."""
    from action_rec.labeling import label_videos

    ckpt = make_checkpoint(tmp_path / "m.ckpt", NAMES, fps=FPS, window=WINDOW)
    for label, n in (("falling", 51), ("walking", 63)):
        make_video(tmp_path / "ds" / label / f"{label}.mp4", n_frames=n, fps=8.0)
    r = evaluate(ckpt, tmp_path / "ds", tmp_path / "out", cache_dir=str(tmp_path / "cache"), progress=False)
    rows = {Path(x["path"]).stem: x["duration_s"] for x in csv.DictReader(open(tmp_path / "out" / "predictions.csv"))}
    assert rows == {"falling": "6.375", "walking": "7.875"}
    labelled = {Path(x.path).stem: x.duration_s for x in label_videos([tmp_path / "ds"], ckpt, workers=0)}
    assert labelled == {"falling": pytest.approx(6.375), "walking": pytest.approx(7.875)}
    assert r["fall"]["non_fall_hours"] == pytest.approx(7.875 / 3600)


def test_macro_f1_without_other_averages_the_action_classes_f1():
    """A checkpoint with an `other` class: the mean F1 of its other classes, `other`'s own F1 left out (an `other`
    clip called walking still costs walking's precision)."""
    from action_rec.evaluation.scoring import class_metrics

    names = ["falling", "other", "running", "walking"]
    # true -> predicted: falling F F; other O W; running R; walking W F
    true = [0, 0, 1, 1, 2, 3, 3]
    pred = [0, 0, 1, 3, 2, 3, 0]
    r = class_metrics(true, pred, names)
    f1 = {c: r["per_class"][c]["f1"] for c in names}
    assert [f1[c] for c in names] == pytest.approx([0.8, 2 / 3, 1, 0.5])
    assert r["macro_f1_without_other"] == pytest.approx((0.8 + 1 + 0.5) / 3)
    assert r["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 1 + 0.5) / 4)
