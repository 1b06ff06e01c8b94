"""Live mode: streaming equals batch, alerts on a falling clip only, recordings decode, failures exit cleanly.

The make_checkpoint backbone (random efficientnet_lite0) gives all but constant features, so the model
runs on a stand-in backbone instead: a fixed random convolution whose features follow the picture. Its
LSTM is trained here, in a second, on the features of one generated falling clip and one walking clip.
"""

import copy
import io
import json
import os
import re
import shlex
import signal
import sys
import threading

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from action_rec.backbones import Backbone, Preprocess
from action_rec.decision.windows import take, window_starts
from action_rec.features import extract_video
from action_rec.inference import Predictor
from action_rec.inference.stream import StreamingClassifier
from action_rec.live import build_parser, main, run
from action_rec.live.sinks import LiveOutputs, Recorder, SinkError
from action_rec.synth import render_clip, write_clip
from action_rec.video.capture import Source, SourceError, open_source

NAMES = ["falling", "running", "walking"]


class _Features(nn.Module):
    """Colour statistics of 8x8 patches through a fixed random projection: varies with the picture."""

    def __init__(self, dim):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, dim, 8, stride=8)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.05)
            self.conv.bias.zero_()

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A Predictor (tiny checkpoint, stand-in backbone, LSTM trained on two synthetic clips), the clips,
    and the same Predictor before training."""
    from tests.conftest import write_checkpoint

    root = tmp_path_factory.mktemp("live")
    pred = Predictor(write_checkpoint(root / "m.ckpt", NAMES, fps=4.0, window=6, hidden=32))
    pred.backbone = Backbone("standin", "test", _Features(pred.backbone.feature_dim), Preprocess(size=64))
    clips = {}
    for action in ("falling", "walking"):
        frames, fps = render_clip(action, 3)
        clips[action] = root / f"{action}.mp4"
        write_clip(clips[action], [cv2.resize(f, (96, 54), interpolation=cv2.INTER_AREA) for f in frames], fps)
    untrained = copy.deepcopy(pred)
    # Train the LSTM on every window of the two clips: enough for it to tell these clips apart.
    xs, ys = [], []
    for action, path in clips.items():
        feats, _ = extract_video(pred.backbone, path, pred.fps)
        starts = window_starts(len(feats), pred.window, 1)
        xs.append(take(feats, np.asarray(starts)[:, None] + np.arange(pred.window)))
        ys += [NAMES.index(action)] * len(starts)
    fit_net(pred.model.net, torch.from_numpy(np.concatenate(xs)), torch.tensor(ys), steps=60)
    return pred, clips, untrained


def fit_net(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    """Train a checkpoint's classifier in place on windows (full batch, seeded), then back to eval()."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()


def live(pred, source, *args, src=None):
    """Run the live loop in-process; returns (exit code, JSON records on stdout, log text)."""
    a = build_parser().parse_args(["--ckpt", "unused", "--source", str(source), *args])
    out, log = io.StringIO(), io.StringIO()
    rc = run(a, out=out, log=log, source=src, predictor=pred)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()], log.getvalue()


def updates(records):
    return [r for r in records if r["type"] == "update"]


def events(records):
    return [r["event"] for r in records if r["type"] == "event"]


def decoded_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.parametrize("stride", [1, 2, 3, 6, 7])
def test_streaming_lanes_equal_batch_windows(env, stride):
    pred = env[0]
    rng = np.random.default_rng(stride)
    for n in (1, 4, 6, 7, 11, 12, 20):
        feats = rng.normal(size=(n, pred.backbone.feature_dim)).astype(np.float32)
        ref, starts = pred.window_probs(feats, stride)
        sc = StreamingClassifier(pred.model.net, pred.window, stride)
        got = [r for f in feats for r in sc.push(f)] + sc.finish()
        assert [r.start for r in got] == starts
        np.testing.assert_allclose(np.stack([r.probs for r in got]), ref, atol=1e-5)
        assert len(sc.lane_start) <= -(-pred.window // stride)  # constant work: a bounded number of lanes


@pytest.mark.parametrize("members,stride", [(1, 2), (1, 6), (3, 3)])  # 6 > window: frames with no lane at all
def test_people_stepped_together_get_their_own_windows(members, stride):
    """live/tracks.py steps every person's lanes in one batch (push_together): each person must still get
    exactly the windows of their own stream, whoever else is in view and whenever they appeared."""
    import torch

    from action_rec.inference.stream import push_together
    from action_rec.model.ensemble import pack
    from action_rec.model.lstm import ActionLSTM

    torch.manual_seed(members)
    nets = [ActionLSTM(12, 3, proj_dim=16, hidden=8).eval() for _ in range(members)]
    net = nets[0] if members == 1 else pack(nets).eval()
    window, rng = 4, np.random.default_rng(stride)
    feats = [rng.normal(size=(n, 12)).astype(np.float32) for n in (15, 9, 4)]
    joins = [0, 3, 10]  # people 2 and 3 come into view later
    alone = []
    for f in feats:
        sc = StreamingClassifier(net, window, stride)
        alone.append([r for row in f for r in sc.push(row)])
    together = [StreamingClassifier(net, window, stride) for _ in feats]
    got = [[] for _ in feats]
    for t in range(max(j + len(f) for j, f in zip(joins, feats))):
        now = [i for i, (j, f) in enumerate(zip(joins, feats)) if j <= t < j + len(f)]
        for i, res in zip(now, push_together([together[i] for i in now], [feats[i][t - joins[i]] for i in now])):
            got[i] += res
    for mine, ref in zip(got, alone):
        assert [r.start for r in mine] == [r.start for r in ref] and ref
        np.testing.assert_allclose(np.stack([r.probs for r in mine]), np.stack([r.probs for r in ref]), atol=1e-6)
    other = StreamingClassifier(ActionLSTM(12, 3, proj_dim=16, hidden=8), window, stride)
    with pytest.raises(ValueError, match="one net"):
        push_together([together[0], other], [feats[0][0], feats[0][0]])


def test_live_on_a_file_matches_batch_mode(env):
    _, clips, pred = env  # untrained: less sure of itself, so its outputs vary more from window to window
    # an 18-fps clip sampled at 4 fps: also checks that live picks the frames video.iter_sampled picks;
    # the lanes give the windows on the stride grid, finish() the end-aligned last one
    rc, recs, log = live(pred, clips["falling"], "--headless", "--no-realtime")
    assert rc == 0, log
    feats, _ = extract_video(pred.backbone, clips["falling"], pred.fps)
    ref, starts = pred.window_probs(feats)
    assert starts[-1] % 3 != 0
    ups = updates(recs)
    assert [u["window_s"][0] for u in ups] == pytest.approx([s / pred.fps for s in starts])
    got = np.array([[u["probs"][c] for c in NAMES] for u in ups])
    np.testing.assert_allclose(got, ref, atol=2e-6)  # JSON keeps 6 decimals
    assert np.ptp(ref, axis=0).max() > 100 * 2e-6  # the windows differ: the equality is not trivial


def test_live_reads_the_checkpoints_region_as_batch_does(env, tmp_path):
    """A checkpoint trained on a region (data.regions) sees live the same cut frames as batch mode."""
    from action_rec.video.region import regions_by_size

    _, clips, untrained = env
    pred = copy.copy(untrained)
    cap = cv2.VideoCapture(str(clips["falling"]))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    h, w = frames[0].shape[:2]
    wide = tmp_path / "side_by_side.mp4"
    vw = cv2.VideoWriter(str(wide), cv2.VideoWriter_fourcc(*"mp4v"), cap.get(cv2.CAP_PROP_FPS), (2 * w, h))
    for f in frames:
        vw.write(np.concatenate([np.full_like(f, 200), f], axis=1))  # a flat panel, then the picture
    vw.release()
    pred.regions = regions_by_size({f"{2 * w}x{h}": "0.5,0,1,1"})
    rc, recs, log = live(pred, wide, "--headless", "--no-realtime")
    assert rc == 0, log
    feats, _ = extract_video(pred.backbone, wide, pred.fps, region=pred.regions)
    ref, _ = pred.window_probs(feats)
    whole, _ = pred.window_probs(extract_video(pred.backbone, wide, pred.fps)[0])
    assert np.abs(whole - ref).max() > 100 * 2e-6  # the region changes what the model sees
    got = np.array([[u["probs"][c] for c in NAMES] for u in updates(recs)])
    np.testing.assert_allclose(got, ref, atol=2e-6)


def test_fall_alert_on_falling_clip_not_on_walking(env, tmp_path):
    pred, clips, _ = env
    hook = tmp_path / "hook.py"
    hook.write_text("import os, sys\nopen(sys.argv[1], 'a').write(sys.stdin.read())\n")
    seen = {}
    for action, path in clips.items():
        got_cmd, alert_file = tmp_path / f"{action}_cmd.jsonl", tmp_path / f"{action}_alerts.jsonl"
        rc, recs, log = live(pred, path, "--headless", "--no-realtime", "--alert-file", str(alert_file),
                             "--alert-cmd", shlex.join([sys.executable, str(hook), str(got_cmd)]))
        assert rc == 0, log
        ups = updates(recs)
        assert len(ups) >= 3 and all(set(u) >= {"t", "time", "label", "probs"} for u in ups)
        seen[action] = (events(recs), ups, alert_file, got_cmd)
        # the same events, to the second, as batch mode's for the whole file (one shared rule)
        ends = [r for r in recs if r["type"] == "event" and r["event"] == "fall_end"]
        batch = [t for ev in pred.predict_video(path).events for t in ev]
        assert [t for e in ends for t in (e["fall_start_s"], e["fall_end_s"])] == pytest.approx(batch)
    ev, ups, alert_file, got_cmd = seen["falling"]
    assert ev == ["fall_start", "fall_end"]  # once per event, not once per update
    # the alert fires only once the fall probability has stayed high for k updates
    p = [u["probs"]["falling"] for u in ups]
    first = next(i for i in range(1, len(p)) if p[i] > 0.5 and p[i - 1] > 0.5)
    start = next(r for r in [json.loads(s) for s in alert_file.read_text().splitlines()])
    assert start["event"] == "fall_start" and start["t"] == pytest.approx(ups[first]["t"])
    assert len(alert_file.read_text().splitlines()) == 2
    for _ in range(100):  # the hook runs on its own; give it a moment
        if got_cmd.exists() and len(got_cmd.read_text().splitlines()) == 2:
            break
        threading.Event().wait(0.05)
    # one hook process per event, each on its own (never blocking the stream): under load the second can finish
    # first, so the file's line order is not the events' order; both arrive, once each
    assert sorted(json.loads(s)["event"] for s in got_cmd.read_text().splitlines()) == ["fall_end", "fall_start"]
    ev, ups, alert_file, got_cmd = seen["walking"]
    assert ev == [] and alert_file.read_text() == "" and not got_cmd.exists()
    assert sum(u["label"] == "walking" for u in ups) > len(ups) / 2


def test_save_writes_a_decodable_recording(env, make_video, tmp_path):
    video = make_video(tmp_path / "v.mp4", n_frames=30, fps=10.0)
    out = tmp_path / "rec.mp4"
    rc, recs, log = live(env[0], video, "--headless", "--no-realtime", "--save", str(out))
    assert rc == 0 and "saved" in log
    assert decoded_frames(out) == 30
    assert not list(tmp_path.glob(".rec*"))  # no temp file left behind


class _FailingCamera:
    """A camera that delivers `good` frames, then fails: read() returns False, raises, or hangs."""

    def __init__(self, good, how):
        self.good, self.how, self.n, self.released = good, how, 0, False
        self.unblock = threading.Event()

    def read(self):
        self.n += 1
        if self.n > self.good:
            if self.how == "raise":
                raise cv2.error("device disconnected")
            if self.how == "hang":
                self.unblock.wait(30)
            return False, None
        threading.Event().wait(0.03)
        f = np.full((48, 64, 3), (self.n * 7) % 255, np.uint8)
        f[10:20, self.n % 50:self.n % 50 + 10] = 255
        return True, f

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


@pytest.mark.parametrize("how", ["no_frames", "raise", "hang"])
def test_camera_failing_mid_stream_exits_cleanly(env, tmp_path, how):
    cam = _FailingCamera(good=40, how=how)
    out = tmp_path / "rec.mp4"
    try:
        rc, recs, log = live(env[0], "0", "--headless", "--save", str(out), "--stall-timeout", "0.3",
                             src=Source(cam, "fake camera", is_file=False, fps=30.0))
    finally:
        cam.unblock.set()
    assert rc == 1
    assert ("device disconnected" if how == "raise" else "no frames for 0.3 s") in log
    assert "Traceback" not in log and (cam.released or how == "hang")  # a hung driver is left alone
    shown = int(re.search(r"(\d+) frames shown", log).group(1))
    assert 0 < shown <= 40 and decoded_frames(out) == shown  # finalised: all frames shown, playable


def test_ctrl_c_stops_cleanly_and_finalises_the_recording(env, make_video, tmp_path):
    video = make_video(tmp_path / "long.mp4", n_frames=200, fps=20.0)  # 10 s played in real time
    out = tmp_path / "rec.mp4"

    def interrupt():  # only once live's own handler is in place, never pytest's
        while getattr(signal.getsignal(signal.SIGINT), "__module__", None) != "action_rec.live.app":
            threading.Event().wait(0.05)
        threading.Event().wait(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    rc, recs, log = live(env[0], video, "--headless", "--save", str(out))
    assert rc == 130 and "interrupted" in log
    assert 5 < decoded_frames(out) < 200


def test_bad_sources_give_a_clear_message(tmp_path, capsys):
    for source, msg in [("99", "camera 99 not found"), (str(tmp_path / "nope.mp4"), "no such file"),
                        ("rtsp://127.0.0.1:1/stream", "cannot open the stream")]:
        with pytest.raises(SourceError, match=msg):
            open_source(source, open_timeout_s=2)
    assert main(["--ckpt", str(tmp_path / "missing.ckpt"), "--headless"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_window_without_display_says_so(env, monkeypatch, make_video, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    rc, _, log = live(env[0], make_video(tmp_path / "v.mp4"))
    assert rc == 2 and "--headless" in log


def test_bad_alert_and_save_settings_are_refused_up_front(tmp_path):
    with pytest.raises(SinkError, match="command not found"):
        LiveOutputs(NAMES, alert_cmd="no-such-command-xyz --flag")
    with pytest.raises(SinkError, match="cannot write"):
        LiveOutputs(NAMES, alert_file=tmp_path / "no" / "such" / "dir" / "alerts.jsonl")
    with pytest.raises(SinkError, match="does not exist"):
        Recorder(tmp_path / "missing" / "out.mp4", 30)
    with pytest.raises(SinkError, match=".mp4"):
        Recorder(tmp_path / "out.txt", 30)


def test_save_targets_are_checked_before_the_stream_starts(env, make_video, tmp_path, capsys):
    video = make_video(tmp_path / "v.mp4", n_frames=10, fps=10.0)
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(SinkError, match=r"--save .*dir.mp4: is a folder; give a file name"):
        Recorder(tmp_path / "dir.mp4", 30)
    with pytest.raises(SinkError, match=r"--save /proc/x.mp4: cannot write in /proc"):
        Recorder("/proc/x.mp4", 30)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="is a file, not a folder"):
        Recorder(tmp_path / "file" / "x.mp4", 30)
    for args, msg in ((["--save", tmp_path / "dir.mp4"], f"--save {tmp_path}/dir.mp4: is a folder"),
                      (["--save", video], f"--save {video} is one of the input videos"),
                      (["--save", tmp_path / "a.mp4", "--alert-file", tmp_path / "a.mp4"],
                       f"--save {tmp_path}/a.mp4 and --alert-file {tmp_path}/a.mp4 are the same path")):
        # refused before the checkpoint is even read (x.ckpt does not exist)
        assert main(["--ckpt", "x.ckpt", "--source", str(video), "--headless", *map(str, args)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"action-rec live: error: {msg}") and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing left behind


def test_a_failed_final_rename_says_where_the_recording_is(env, make_video, tmp_path):
    video = make_video(tmp_path / "v.mp4", n_frames=20, fps=10.0)
    out = tmp_path / "rec.mp4"
    real_close = Recorder.close

    def close_onto_a_folder(self):  # something makes the target a folder while the stream plays
        out.mkdir()
        return real_close(self)

    Recorder.close = close_onto_a_folder
    try:
        rc, _, log = live(env[0], video, "--headless", "--no-realtime", "--save", str(out))
    finally:
        Recorder.close = real_close
    partial = tmp_path / ".rec.partial.mp4"
    assert rc == 1 and f"it is complete in {partial}" in log and "Traceback" not in log
    assert decoded_frames(partial) == 20
    # the next recording to that name does not overwrite the kept one
    out.rmdir()
    rec = Recorder(out, 10)
    assert rec.tmp != partial and partial.is_file()
    rec.discard()


@pytest.mark.parametrize("args, msg", [(["--fall-k", "0"], "argument --fall-k: must be >= 1, got 0"),
                                       (["--fall-threshold", "1.5"], "argument --fall-threshold: must be between 0 and 1"),
                                       (["--fall-m", "-2"], "argument --fall-m: must be >= 1"),
                                       (["--stall-timeout", "0"], "argument --stall-timeout: must be > 0"),
                                       (["--hea"], "unrecognized arguments: --hea — did you mean '--headless'?")])
def test_out_of_range_and_abbreviated_options_are_refused(args, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--ckpt", "x.ckpt", *args])
    assert e.value.code == 2 and f"action-rec live: error: {msg}" in capsys.readouterr().err


def test_a_symlink_loop_source_is_not_called_missing(tmp_path):
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    with pytest.raises(SourceError, match=r"loop.mp4: symlink loop \(too many levels of symbolic links\)$"):
        open_source(str(tmp_path / "loop.mp4"))
