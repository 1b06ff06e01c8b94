"""Several people in view: per-track rows (deterministic boxes), and a generated two-person video labelled per
person in batch (and live, see test_live_tracks below): the falling person gets the alert, the walking one not.

No network is downloaded or trained beyond a second: a blob "detector" finds the two drawn people (coloured
bodies on a grey floor), a stand-in convolution embeds their crops, and the LSTM is trained here on the two
tracks' own rows (the faller's windows around the fall = falling, everything else = walking).
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tests.features.test_person import FRAME, G, _Det, boxes
from tests.live.test_live import _Features, fit_net  # the stand-in backbone: features that follow the picture

from action_rec.backbones import Backbone, Preprocess
from action_rec.data import take, window_starts
from action_rec.features.person import GEOMETRY, PersonFeatures, _VideoState
from action_rec.inference.tracks import META, MultiTrackState, TrackFeatures, split_tracks
from action_rec.video import iter_sampled

NAMES = ["falling", "running", "walking"]


def run_multi(state, seq):
    return [{tid: (crop, geo, box) for tid, crop, geo, box in state.step(FRAME, b)} for b in seq]


def test_each_track_gets_the_main_person_row_of_its_own_box():
    """A's rows among two people are the rows _VideoState gives for A alone (but for `crowd`); B's likewise."""
    a = [(100 - 5 * max(0, k - 5), 40 + 15 * max(0, k - 5), 140 + 10 * max(0, k - 5), 200, 0.9, int(k > 7))
         for k in range(10)]                                   # stands, then drops and widens
    b = [(200 + 6 * k, 30, 240 + 6 * k, 210, 0.8, 0) for k in range(10)]  # walks right
    multi = run_multi(MultiTrackState(_Det()), [boxes(x, y) for x, y in zip(a, b)])
    assert all(sorted(m) == [1, 2] for m in multi)
    crowd = G["crowd"]
    for tid, rows in ((1, b), (2, a)):  # new ids go to the largest boxes first: B (taller) is 1
        state = _VideoState(_Det())
        ref = np.stack([state.step(FRAME, boxes(r))[1] for r in rows])
        got = np.stack([m[tid][1] for m in multi])
        keep = [i for i in range(len(GEOMETRY)) if i != crowd]
        np.testing.assert_allclose(got[:, keep], ref[:, keep], atol=1e-6)
        assert np.allclose(got[:, crowd], 1 / 3)  # one other person in view
        np.testing.assert_allclose(np.stack([m[tid][2] for m in multi]), np.asarray(rows)[:, :4], atol=1e-4)


def test_tracks_that_cross_leave_and_come_back_keep_no_state_of_another():
    """Two walkers cross; one leaves for longer than the tracker keeps lost tracks and comes back: a new id
    with a fresh history (no velocity, its own usual height); lost frames are no-person rows; ids never reused;
    the bound keeps the largest people."""
    st = MultiTrackState(_Det())
    seq = [boxes((40 + 12 * k, 40, 80 + 12 * k, 200, 0.9, 0), (280 - 12 * k, 60, 310 - 12 * k, 200, 0.9, 0))
           for k in range(20)]                                          # cross in the middle
    seq += [boxes((300, 40, 340, 200, 0.9, 0))] * 40                    # one leaves for 40 frames (> 30 kept)
    seq += [boxes((300, 40, 340, 200, 0.9, 0), (20, 120, 50, 180, 0.9, 0))] * 3  # someone (shorter) enters
    out = run_multi(st, seq)
    assert sorted(out[0]) == [1, 2]
    lost = [m for m in out[20:60] if len(m) == 2]
    assert lost and all(not m[min(m)][1].any() or not m[max(m)][1].any() for m in lost)  # a zero row while lost
    assert all(len(m) == 1 for m in out[52:60])   # then removed by the tracker: its state is gone
    assert len(out[60]) == 1  # a newcomer is confirmed on its second frame
    back = out[61]
    new = max(back)
    assert new == 3 and sorted(back) == [min(back), 3]  # a new id, never 1 or 2 again
    g = back[new][1]
    assert g[G["present"]] == 1 and g[G["vx"]] == 0 and g[G["vy"]] == 0 and g[G["height_vs_track"]] == 0
    assert len(st.tracks) == 2

    small = MultiTrackState(_Det(), max_tracks=2)   # three people, two kept: the two largest
    three = [boxes((10, 10, 30, 60, 0.9, 0), (100, 20, 160, 220, 0.9, 0), (200, 40, 240, 200, 0.9, 0))] * 3
    got = run_multi(small, three)
    assert all(len(m) == 2 for m in got)
    assert sorted(round(float(m[i][2][0])) for m in got[-1:] for i in m) == [100, 200]


# ----------------------------------------------------------------------------------------------- two people
W, H, NATIVE_FPS, N = 320, 160, 8.0, 64
FALL_AT = 24  # native frame where the left person starts to fall (3 s), lying from frame 40


def person_boxes(i):
    """(left faller, right walker) boxes (x1, y1, x2, y2) at native frame i."""
    k = float(np.clip((i - FALL_AT) / 16, 0, 1))
    k = k * k * (3 - 2 * k)  # eases into lying still (a sudden stop outruns the tracker's motion model)
    left = (70 - 20 * k, 60 + 40 * k, 90 + 20 * k, 140)
    x = 170 + 2 * i
    return left, (x, 60, x + 20, 140)


def two_people_video(path):
    frames = []
    for i in range(N):
        f = np.full((H, W, 3), 110, np.uint8)
        for (x1, y1, x2, y2), colour in zip(person_boxes(i), ((40, 40, 220), (220, 90, 30))):
            cv2.rectangle(f, (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1), colour, -1)
            cv2.circle(f, (int((x1 + x2) / 2), int(y1) + 5), 4, (200, 200, 200), -1)  # a head: some texture
        frames.append(f)
    from action_rec.synth import write_clip

    write_clip(path, frames, NATIVE_FPS)
    return path


class BlobDetector(_Det):
    """Boxes of the saturated blobs of a frame (the drawn people), conf 0.9, class Normal."""

    def detect(self, frames_rgb):
        out = []
        for f in frames_rgb:
            sat = cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2HSV)[..., 1] > 90
            n, _, stats, _ = cv2.connectedComponentsWithStats(sat.astype(np.uint8))
            rows = [(x, y, x + w, y + h, 0.9, 0) for x, y, w, h, a in stats[1:] if a > 60]
            b = boxes(*rows) if rows else boxes()
            b.orig_shape = f.shape[:2]
            out.append(b)
        return out


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """(Predictor of a person checkpoint: blob detector, stand-in crop features, LSTM trained on the two
    tracks), the two-person video, its per-track sequences."""
    from tests.conftest import write_checkpoint

    from action_rec.inference import Predictor

    root = tmp_path_factory.mktemp("tracks")
    pred = Predictor(write_checkpoint(root / "m.ckpt", NAMES, fps=4.0, window=6, hidden=32))
    d = pred.backbone.feature_dim - len(GEOMETRY)  # the LSTM takes crop embedding + geometry
    pred.backbone = PersonFeatures(Backbone("standin", "test", _Features(d), Preprocess(size=64)), "person",
                                   BlobDetector())
    video = two_people_video(root / "v" / "two.mp4")
    frames = [f for _, f in iter_sampled(video, pred.fps)]  # RGB, as the decoders give them
    seqs = split_tracks(TrackFeatures(pred.backbone).embed(frames))
    assert len(seqs) == 2, [(s.id, len(s.feats)) for s in seqs]
    faller = min(seqs, key=lambda s: s.boxes[0, 0])
    xs, ys = [], []
    for s in seqs:
        starts = np.asarray(window_starts(len(s.feats), pred.window, 1))
        xs.append(take(s.feats, starts[:, None] + np.arange(pred.window)))
        fall = FALL_AT / NATIVE_FPS * pred.fps - s.first  # sample index of the fall in this track
        ys += ["falling" if s is faller and st + pred.window > fall + 1 else "walking" for st in starts]
    fit_net(pred.model.net, torch.from_numpy(np.concatenate(xs)), torch.tensor([NAMES.index(c) for c in ys]), 300)
    return pred, video, {s.id: s for s in seqs}, faller.id


def test_batch_labels_each_person_and_alerts_on_the_faller_only(two, tmp_path):
    from action_rec.labeling import label_videos

    pred, video, seqs, faller = two
    out, jsonl, ann = tmp_path / "l.csv", tmp_path / "l.jsonl", tmp_path / "ann"
    (r,) = label_videos([video], pred, out=out, jsonl=jsonl, annotate=ann, workers=0)
    assert r.ok, r.error
    by = {t.id: t for t in r.tracks}
    walker = next(i for i in by if i != faller)
    assert by[faller].events and not by[walker].events
    assert r.label == "falling" and r.events == by[faller].events
    a, b = by[faller].events[0]
    assert FALL_AT / NATIVE_FPS - 1.5 <= a <= FALL_AT / NATIVE_FPS + 1.5 and b > a
    row = next(iter(__import__("csv").DictReader(open(out))))
    assert row["label"] == "falling" and row["fall_events"] == f"{faller}:{a:.2f}-{b:.2f}"
    assert row["windows"] == str(sum(len(t.window_starts_s) for t in r.tracks))
    lines = [json.loads(x) for x in open(jsonl)]
    assert len(lines) == int(row["windows"]) and {x["track"] for x in lines} == {faller, walker}
    walker_line = next(x for x in lines if x["track"] == walker)
    assert walker_line["label"] == "walking" and walker_line["box"][0] > 160  # its box: the right half
    assert (ann / "two.mp4").is_file()
    # a second run finds it all done (the timeline's windows are keyed by track too)
    assert list(label_videos([video], pred, out=out, jsonl=jsonl, workers=0)) == []

    # --main-person: one sequence per video, as before (the video-level timeline, no tracks)
    (m,) = label_videos([video], pred, tracks=False, workers=0)
    assert m.ok and m.tracks is None and m.window_probs is not None


def test_frame_checkpoint_asked_for_tracks_is_a_usage_error(make_checkpoint, make_video, tmp_path, capsys):
    from action_rec.labeling import label_videos
    from action_rec.labeling.cli import cmd_label
    from action_rec.utils.errors import UsageError

    ckpt = make_checkpoint(tmp_path / "f.ckpt")
    video = make_video(tmp_path / "a.mp4")
    with pytest.raises(UsageError, match="need a checkpoint trained with `features: person`"):
        label_videos([video], ckpt, tracks=True)
    assert cmd_label([str(video), "--ckpt", str(ckpt), "--tracks", "--out", str(tmp_path / "x.csv")]) == 2
    from action_rec.cli import main

    make_video(tmp_path / "ds" / "falling" / "b.mp4")
    capsys.readouterr()
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "r"),
                 "--tracks"]) == 2
    assert "per-person tracks need a checkpoint trained with" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    (r,) = label_videos([video], ckpt, workers=0)  # whole frames: exactly as before, no tracks
    assert r.ok and r.tracks is None


def test_live_follows_each_person_and_equals_batch(two):
    """`action-rec live --headless --no-realtime` on the same file: one alert, naming the faller's track, and
    per person the windows, probabilities and events of batch labelling."""
    import io

    from action_rec.labeling import label_videos
    from action_rec.live import build_parser, run

    pred, video, seqs, faller = two
    (r,) = label_videos([video], pred, workers=0)
    a = build_parser().parse_args(["--ckpt", "unused", "--source", str(video), "--headless", "--no-realtime"])
    out, log = io.StringIO(), io.StringIO()
    assert run(a, out=out, log=log, predictor=pred) == 0, log.getvalue()
    recs = [json.loads(x) for x in out.getvalue().splitlines()]
    starts = [e for e in recs if e["type"] == "event" and e["event"] == "fall_start"]
    assert [e["track"] for e in starts] == [faller]
    ends = {(e["track"], round(e["fall_start_s"], 2), round(e["fall_end_s"], 2))
            for e in recs if e["type"] == "event" and e["event"] == "fall_end"}
    assert ends == {(t.id, round(a, 2), round(b, 2)) for t in r.tracks for a, b in t.events}
    ups = [u for u in recs if u["type"] == "update"]
    assert all("track" in u and len(u["box"]) == 4 for u in ups)
    for t in r.tracks:
        mine = [u for u in ups if u["track"] == t.id]
        assert [u["window_s"][0] for u in mine] == pytest.approx(t.window_starts_s, abs=1e-3)
        live = np.array([[u["probs"][c] for c in NAMES] for u in mine])
        np.testing.assert_allclose(live, t.window_probs, atol=2e-6)
        np.testing.assert_allclose([u["box"] for u in mine], t.window_boxes, atol=0.1)


def test_two_people_falling_raise_two_alerts_each_naming_its_track(two):
    """TrackLiveModel fed rows directly: tracks 1 and 2 both replay the faller's rows (2 from a later sample), 3
    the walker's: two alerts, one per faller, with the events of batch's decision on each sequence; the walker's
    model never sees another track's rows (its windows equal batch windows of its own rows)."""
    from action_rec.decision import decide
    from action_rec.live.tracks import TrackLiveModel

    pred, _, seqs, faller = two
    fall = seqs[faller]
    walk = next(s for i, s in seqs.items() if i != faller)
    plan = {1: (0, fall), 2: (3, fall), 3: (0, walk)}  # id: (first sample, sequence)
    n = max(first + len(s.feats) for first, s in plan.values())
    slots = np.zeros((n, 3, META + fall.feats.shape[1]), np.float32)
    for j, (tid, (first, s)) in enumerate(plan.items()):
        slots[first:first + len(s.feats), j, 0] = tid
        slots[first:first + len(s.feats), j, 1:5] = s.boxes
        slots[first:first + len(s.feats), j, META:] = s.feats

    class Rows:  # stands in for TrackFeatures: the planned slots, one frame at a time
        def video_embedder(self):
            it = iter(slots)
            return type("E", (), {"embed": lambda self, frames: next(it)[None]})()

    model = TrackLiveModel(pred, Rows())
    ups = [u for _ in range(n) for u in model.feed(np.zeros((8, 8, 3), np.uint8), 1)]
    last, ends = model.finish()
    ups += last
    starts = [u.event for u in ups if u.event and u.event["event"] == "fall_start"]
    assert sorted(e["track"] for e in starts) == [1, 2]
    for tid, (first, s) in plan.items():
        probs = np.array([u.probs for u in ups if u.track == tid])
        ref, _ = pred.window_probs(s.feats)
        np.testing.assert_allclose(probs, ref, atol=2e-6)
        _, _, events = decide(ref, pred.class_names, pred.rule)
        assert bool(events) == (tid != 3)
    assert {e["track"] for e in ends} <= {1, 2}


# ------------------------------------------------------------------------------------- re-link after a fall
# A stands, then falls at once: the lying box overlaps the standing one too little for the tracker's motion model,
# so the tracker loses the standing track and confirms a new one. B walks on the right all along.
STAND, LIE = (100, 40, 140, 200, 0.9, 0), (60, 160, 220, 200, 0.9, 1)
FALL_SEQ = [boxes(a, (250 + 2 * k, 30, 290 + 2 * k, 210, 0.8, 0))
            for k, a in enumerate([STAND] * 10 + [LIE] * 10)]


def test_a_person_lost_at_their_fall_keeps_their_id_and_history():
    """With re-link the lying box continues the faller's track (id, usual height: height_vs_track shows the drop);
    without it, a third id with a fresh history (what the tracker alone gives)."""
    out = run_multi(MultiTrackState(_Det(), relink=8), FALL_SEQ)
    assert all(sorted(m) == [1, 2] for m in out)  # B (larger box) is 1, A is 2, and stays 2
    assert [round(float(m[2][2][0])) for m in out if m[2][2] is not None] == [100] * 10 + [60] * 9
    assert any(m[2][2] is None for m in out[10:])  # the sample where the tracker had lost A: a no-person row
    lying = [m[2][1] for m in out[11:]]
    assert all(g[G["present"]] == 1 and g[G["height_vs_track"]] < -0.5 for g in lying[:3])  # 40 px vs usual 160

    plain = run_multi(MultiTrackState(_Det(), relink=0), FALL_SEQ)
    assert sorted(plain[-1]) == [1, 2, 3] and plain[-1][2][2] is None  # A lost for good, a new person 3
    assert plain[12][3][1][G["height_vs_track"]] == 0  # with no history


def test_relink_never_hands_a_lost_persons_state_to_someone_else():
    """Two people cross (the detector sees one box while they overlap): each keeps their own id and direction. A
    person who leaves while someone new appears far away (more than a body size), and a person lost for longer
    than the re-link window and then replaced where they were: new ids, fresh histories."""
    seq = []
    for k in range(24):
        a, b = (40 + 10 * k, 40, 80 + 10 * k, 200, 0.9, 0), (270 - 10 * k, 60, 300 - 10 * k, 200, 0.9, 0)
        seq.append(boxes(a) if 10 <= k <= 13 else boxes(a, b))
    out = run_multi(MultiTrackState(_Det(), relink=8), seq)
    xs = {tid: [float(m[tid][2][0]) for m in out if tid in m and m[tid][2] is not None] for tid in (1, 2)}
    assert all(sorted(m) == [1, 2] for m in out)
    assert np.all(np.diff(xs[1]) > 0) and np.all(np.diff(xs[2]) < 0) and len(xs[1]) == 24 and len(xs[2]) == 20

    far = [boxes((60, 40, 100, 200, 0.9, 0))] * 6 + [boxes((250, 40, 290, 200, 0.9, 0))] * 4  # > 160 px away
    out = run_multi(MultiTrackState(_Det(), relink=8), far)
    assert sorted(out[-1]) == [1, 2] and out[-1][1][2] is None
    g = out[-1][2][1]
    assert g[G["present"]] == 1 and g[G["vx"]] == 0 and g[G["height_vs_track"]] == 0

    small = [boxes((60, 40, 100, 200, 0.9, 0))] * 6 + [boxes((70, 150, 90, 200, 0.9, 0))] * 4  # a child there
    assert sorted(run_multi(MultiTrackState(_Det(), relink=8), small)[-1]) == [1, 2]

    # nobody in view for a while, then a lying box where they stood (too little overlap for the tracker)
    late = [boxes(STAND)] * 6 + [boxes()] * 10 + [boxes(LIE)] * 3
    got = run_multi(MultiTrackState(_Det(), relink=8), late)  # lost 11 samples > 8: too late to be them
    assert sorted(got[-1]) == [1, 2] and got[-1][2][1][G["height_vs_track"]] == 0
    soon = [boxes(STAND)] * 6 + [boxes()] * 3 + [boxes(LIE)] * 3  # within the window: them
    got = run_multi(MultiTrackState(_Det(), relink=8), soon)
    assert sorted(got[-1]) == [1] and got[-1][1][1][G["height_vs_track"]] < -0.5


def test_relinked_person_keeps_their_lstm_state_live_and_batch_alike(tmp_path):
    """FALL_SEQ through TrackFeatures (batch) and TrackLiveModel (live): the faller is one sequence, one LiveModel
    from start to end, and live's windows there equal batch windows of that one sequence."""
    from tests.conftest import write_checkpoint

    from action_rec.inference import Predictor
    from action_rec.inference.tracks import per_track_features, track_results
    from action_rec.live.tracks import TrackLiveModel

    pred = Predictor(write_checkpoint(tmp_path / "m.ckpt", NAMES, fps=4.0, window=6, hidden=32))
    d = pred.backbone.feature_dim - len(GEOMETRY)

    class Scripted(_Det):
        def detect(self, frames):
            return [next(self.script) for _ in frames]

    def features():
        det = Scripted()
        det.script = iter(FALL_SEQ)
        frames = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
        pred.backbone = PersonFeatures(Backbone("standin", "test", _Features(d), Preprocess(size=64)), "person", det)
        return per_track_features(pred), frames

    feats, frame = features()
    assert feats.relink == 4  # 1 s at the checkpoint's 4 samples/s
    arr = feats.embed([frame] * len(FALL_SEQ))
    seqs = {s.id: s for s in split_tracks(arr)}
    assert sorted(seqs) == [1, 2] and seqs[2].first == 0 and len(seqs[2].feats) == len(FALL_SEQ)
    batch = {t.id: t for t in track_results(pred, arr, len(FALL_SEQ) / pred.fps)}

    feats, frame = features()
    model = TrackLiveModel(pred, feats)
    ups, mine = [], None
    for i in range(len(FALL_SEQ)):
        ups += model.feed(frame, 1)
        if i == 5:
            mine = model.people_models[2]
    assert model.people_models[2] is mine and sorted(model.people_models) == [1, 2]
    ups += model.finish()[0]
    for tid, t in batch.items():
        got = [u for u in ups if u.track == tid]
        assert [u.start_s for u in got] == pytest.approx(t.window_starts_s, abs=1e-3)
        np.testing.assert_allclose(np.array([u.probs for u in got]), t.window_probs, atol=2e-6)


def test_evaluate_scores_clips_by_the_any_track_rule_as_label_does(two, tmp_path, monkeypatch):
    """`evaluate` on the two-person clip labelled `falling` (and a copy labelled `other`, a non-fall clip): per
    track by default, so the clip is `falling` (the faller's track alerts, the walker's not) with label's very
    label and per-track events, the report says which rule; --main-person scores the main person like
    `label --main-person`."""
    import csv
    import shutil

    from tests.conftest import write_checkpoint

    import action_rec.inference.predictor
    from action_rec.evaluation import evaluate
    from action_rec.labeling import label_videos

    pred, video, _, faller = two
    ckpt = write_checkpoint(tmp_path / "m.ckpt", NAMES, fps=4.0, window=6, hidden=32)  # its identity only
    data = tmp_path / "data"
    for label in ("falling", "other"):
        (data / label).mkdir(parents=True)
        shutil.copy(video, data / label / "two.mp4")
    (lab,) = label_videos([video], pred, workers=0)
    (main,) = label_videos([video], pred, tracks=False, workers=0)
    monkeypatch.setattr(action_rec.inference.predictor, "Predictor", lambda *a, **k: pred)  # the stand-in backbone

    for kw, mode, ref in (({}, "tracks", lab), ({"tracks": False}, "main person", main)):
        out = tmp_path / mode.replace(" ", "_")
        r = evaluate(ckpt, data, out, cache_dir=str(tmp_path / "cache"), progress=False, **kw)
        assert r["clip_rule"]["mode"] == mode and r["clip_rule"]["text"] in (out / "report.md").read_text()
        rows = {Path(x["path"]).parent.name: x for x in csv.DictReader(open(out / "predictions.csv"))}
        for x in rows.values():
            assert x["predicted"] == ref.label and float(x["confidence"]) == pytest.approx(ref.confidence, abs=1e-4)
        assert r["fall"]["false_alerts"] == len(ref.events)  # the `other` copy's alerts
        assert r["fall"]["alerted"] == int(bool(ref.events))
        if mode == "tracks":
            assert ref.label == "falling" and r["fall"]["detected"] == 1
            assert rows["falling"]["fall_events"] == ";".join(
                f"{faller}:{a:.2f}-{b:.2f}" for t in ref.tracks if t.id == faller for a, b in t.events)
            here = r["operating_curve"]["checkpoint_point"]
            assert here["detected"] == 1 and here["false_alerts"] == len(ref.events)


def test_cv_chooses_the_fall_rule_on_every_tracked_person(two, tmp_path, monkeypatch):
    """cv --ensemble scores each fold's held-out clips per tracked person with that fold's model
    (crossval.track_clips), so the rule is chosen on the alerts label, live and evaluate will raise: the walker's
    track counts on the non-fall copy, and the faller's makes the fall clip detected."""
    import shutil

    from tests.conftest import write_checkpoint

    import action_rec.inference.predictor
    from action_rec.data.items import VideoItem
    from action_rec.decision.operating_point import score
    from action_rec.labeling import label_videos
    from action_rec.training.crossval import track_clips, tracked_scores

    pred, video, _, faller = two
    held_out = []
    for label in ("falling", "other"):  # fold 0 holds out the falling copy, fold 1 the other one
        (tmp_path / label).mkdir()
        held_out.append([VideoItem(str(shutil.copy(video, tmp_path / label / "two.mp4")), label)])
    ckpt = str(write_checkpoint(tmp_path / "m.ckpt", NAMES, fps=4.0, window=6, hidden=32))
    monkeypatch.setattr(action_rec.inference.predictor, "Predictor", lambda *a, **k: pred)
    rows = [{"checkpoint": ckpt, "cache_dir": str(tmp_path / "cache")}] * 2
    clips, seqs = track_clips(rows, held_out, progress=False)
    (lab,) = label_videos([video], pred, workers=0)
    assert [c.is_fall for c in clips] == [True, False] and [s["fold"] for s in seqs] == [0, 1]
    for c, s in zip(clips, seqs):  # one sequence per track, label's very probabilities
        assert len(c.p_fall) == len(lab.tracks) == 2 == len(s["p_fall"])
        for p, t in zip(c.p_fall, lab.tracks):
            np.testing.assert_allclose(p, t.window_probs[:, NAMES.index("falling")], atol=1e-6)
    here = score(clips, pred.rule.threshold, pred.rule.k)
    assert here.detected == 1 and here.false_alerts == sum(len(t.events) for t in lab.tracks)
    t = tracked_scores(seqs, NAMES, None, ckpt)  # the falling copy right, the `other` copy (no class here) not counted
    assert [s["predicted"] for s in seqs] == [lab.label] * 2  # the label `label` gives, for the cv table
    assert t["clips"] == 1 and t["accuracy"] == 1.0 and t["recall"]["falling"] == 1.0
    strict = {"threshold": 1.0, "k": 50}  # a rule that never fires: each copy takes its surest person's label
    tracked_scores(seqs, NAMES, strict, ckpt)
    surest = max(lab.tracks, key=lambda t: (t.evidence, t.confidence))
    assert [s["predicted"] for s in seqs] == [surest.label] * 2 and not surest.events
    frame = {"checkpoint": ckpt, "cache_dir": str(tmp_path / "cache")}
    monkeypatch.setattr(action_rec.inference.tracks, "per_track_features", lambda *a, **k: None)
    assert track_clips([frame], [held_out[0]], progress=False) is None  # whole-frame models: the main sequence


def test_worker_processes_and_lightning_predict_label_each_person_as_one_thread_does(two, tmp_path):
    """`label --workers 2` (decoder processes that also track and embed) and the Lightning predict path
    (`--devices`, here one CPU process) write the per-person rows and timeline of workers=0."""
    import csv
    import shutil

    from action_rec.labeling import label_videos
    from action_rec.labeling.distributed import label_distributed

    pred, video, _, faller = two
    vids = [shutil.copy(video, tmp_path / name) for name in ("a.mp4", "b.mp4")]

    def rows(out):
        got = {Path(r["path"]).name: r for r in csv.DictReader(open(out))}
        lines = sorted((Path(x["path"]).name, x["track"], x["start_s"], json.dumps(x["box"]), x["label"])
                       for x in map(json.loads, open(out.with_suffix(".jsonl"))))
        return got, lines

    def same(a, b):
        assert set(a[0]) == set(b[0]) == {"a.mp4", "b.mp4"} and a[1] == b[1]
        for name, r in a[0].items():
            for k, v in r.items():
                if k.startswith("p_") or k == "confidence":
                    assert float(v) == pytest.approx(float(b[0][name][k]), abs=1e-4)
                elif k not in ("path", "mtime_ns"):
                    assert v == b[0][name][k], (name, k)

    out = {k: tmp_path / f"{k}.csv" for k in ("w0", "w2", "lightning")}
    for k, w in (("w0", 0), ("w2", 2)):
        assert all(r.ok for r in label_videos(vids, pred, out=out[k], jsonl=out[k].with_suffix(".jsonl"), workers=w))
    ref = rows(out["w0"])
    assert ref[0]["a.mp4"]["fall_events"].startswith(f"{faller}:") and {x[1] for x in ref[1]} == {1, 2}
    same(rows(out["w2"]), ref)
    label_distributed(vids, pred, out=out["lightning"], jsonl=out["lightning"].with_suffix(".jsonl"), workers=0,
                      accelerator="cpu", devices=1)
    same(rows(out["lightning"]), ref)


def test_the_video_takes_the_label_of_the_person_seen_most_surely_not_the_longest_track():
    """A low-confidence box on a bed, tracked all clip long, must not outweigh the person who walks through
    (what called real walkers `falling`); a lost track's no-person rows add nothing; a fall event still decides."""
    from action_rec.inference.tracks import TrackResult, person_evidence, video_decision

    def rows(n, conf, label="normal", lost=0):
        f = np.zeros((n + lost, 3 + len(G)), np.float32)  # 3 columns of crop embedding, then GEOMETRY
        f[:n, 3 + G["present"]] = 1
        f[:n, 3 + G["fall_score" if label == "fall" else "normal_score"]] = conf
        return f

    bed = rows(46, 0.3, "fall")
    walker = rows(25, 0.8, lost=10)  # then lost for 10 samples: no-person zeros
    assert person_evidence(bed) == pytest.approx(46 * 0.3) and person_evidence(walker) == pytest.approx(25 * 0.8)

    def track(tid, feats, label, confidence=0.5, events=()):
        return TrackResult(id=tid, label=label, confidence=confidence, probs={}, start_s=0, end_s=1, rows=len(feats),
                           events=list(events), evidence=person_evidence(feats))

    tracks = [track(1, bed, "falling", 0.6), track(2, walker, "walking", 0.4)]
    assert tracks[0].rows > tracks[1].rows and video_decision(tracks).id == 2
    tracks.append(track(3, rows(5, 0.4), "falling", 0.3, events=[(1.0, 2.0)]))
    assert video_decision(tracks).id == 3
    assert video_decision([]) is None
