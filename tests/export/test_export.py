"""Export bundles: the torch-free runtime gives the checkpoint's windows, labels and fall events (batch and live, in
processes where torch cannot be imported), the step graph equals the window graph, and a bad bundle or --out is a
one-line error.

The model is test_live's: a stand-in backbone whose features follow the picture and an LSTM trained on one falling
and one walking clip, so the windows differ and the falling clip raises a fall event (the equality is not trivial).
"""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from action_rec.cli import main
from action_rec.export import export_bundle
from action_rec.export.runtime import FORMAT_VERSION, BundlePredictor, BundleStreamingClassifier
from action_rec.features import extract_video
from action_rec.inference.stream import StreamingClassifier
from action_rec.labeling import label_videos
from tests.labeling.test_label import env as proc_env
from tests.live.test_live import NAMES, env, events, live, updates  # noqa: F401  (env: test_live's module fixture)

BLOCKED = ("torch", "lightning", "torchvision", "ultralytics")


@pytest.fixture(scope="module")
def bundle(env, tmp_path_factory):
    pred, clips, _ = env
    out = tmp_path_factory.mktemp("export") / "model"
    export_bundle(pred, out)
    return out


def no_torch_env(tmp_path):
    """A process environment where importing torch (and the rest of the heavy stack) fails and leaves a mark."""
    block = tmp_path / "blocked"
    for name in BLOCKED:
        (block / name).mkdir(parents=True, exist_ok=True)
        (block / name / "__init__.py").write_text(
            f"open({str(tmp_path / 'imported.txt')!r}, 'a').write({name!r} + '\\n')\n"
            f"raise ImportError('{name} is not installed here')\n")
    e = proc_env()
    e["PYTHONPATH"] = f"{block}:{e['PYTHONPATH']}"
    return e, tmp_path / "imported.txt"


def read_csv(path):
    with open(path, newline="") as f:
        return {Path(r["path"]).name: r for r in csv.DictReader(f)}


def test_bundle_layout_and_manifest(bundle, env):
    pred = env[0]
    meta = json.loads((bundle / "bundle.json").read_text())
    assert sorted(p.name for p in bundle.iterdir()) == ["backbone.onnx", "bundle.json", "head.onnx"]
    assert meta["format_version"] == FORMAT_VERSION and meta["classes"] == NAMES and meta["features"] == "frame"
    assert (meta["fps"], meta["window"]) == (pred.fps, pred.window)
    assert meta["fall_rule"] == {"fall_class": "falling", "threshold": 0.5, "k": 2, "m": 2}
    head = meta["graphs"]["head.onnx"]
    d, h = meta["feature_dim"], meta["lstm"]["hidden"]
    assert head["opset"] == 17 and h == pred.model.net.lstm.hidden_size
    assert head["inputs"]["features"]["shape"] == ["batch", "time", d]
    assert head["inputs"]["h0"]["shape"] == head["outputs"]["hn"]["shape"] == [2, "batch", h]
    assert meta["graphs"]["backbone.onnx"]["outputs"]["y"]["shape"] == ["n", d]
    assert set(meta["files"]) == {"backbone.onnx", "head.onnx"}
    assert meta["regions"] == {} and BundlePredictor(bundle).regions == {}


def test_a_checkpoints_regions_travel_into_the_bundle(env, tmp_path):
    """A model trained on a region of its frames (data.regions) reads them so from its bundle too."""
    from action_rec.video.region import Region

    pred = env[0]
    spec = pred.model.hparams.data_spec
    spec["regions"] = {"640x240": "0.5,0,1,1"}
    try:
        export_bundle(pred, tmp_path / "model")
    finally:
        del spec["regions"]
    assert json.loads((tmp_path / "model" / "bundle.json").read_text())["regions"] == {"640x240": "0.5,0,1,1"}
    assert BundlePredictor(tmp_path / "model").regions == {(640, 240): Region(0.5, 0, 1, 1)}


def test_bundle_equals_checkpoint_windows_labels_and_events(bundle, env):
    pred, clips, _ = env
    got = BundlePredictor(bundle)
    for action, path in clips.items():
        a, b = pred.predict_video(path), got.predict_video(path)
        np.testing.assert_allclose(b.window_probs, a.window_probs, atol=1e-4)
        assert (b.label, b.window_starts_s, b.events) == (a.label, a.window_starts_s, a.events)
        assert a.label == action and bool(a.events) == (action == "falling")  # not trivial: the clips differ


def test_step_graph_equals_window_graph_and_the_torch_stream(bundle, env):
    pred = env[0]
    got = BundlePredictor(bundle)
    rng = np.random.default_rng(0)
    feats, _ = extract_video(pred.backbone, env[1]["falling"], pred.fps)
    for stride in (2, 6):
        for n in (1, 7, len(feats), len(feats) + 5):
            x = feats[:n] if n <= len(feats) else rng.normal(size=(n, feats.shape[1])).astype(np.float32)
            ref, starts = got.window_probs(x, stride)
            steps, torch_steps = BundleStreamingClassifier(got.head, pred.window, stride), \
                StreamingClassifier(pred.model.net, pred.window, stride)
            out = [r for f in x for r in steps.push(f)] + steps.finish()
            want = [r for f in x for r in torch_steps.push(f)] + torch_steps.finish()
            assert [r.start for r in out] == [r.start for r in want] == starts
            np.testing.assert_allclose(np.stack([r.probs for r in out]), ref, atol=1e-5)
            np.testing.assert_allclose(np.stack([r.probs for r in out]), np.stack([r.probs for r in want]), atol=1e-4)
    # (h, c) by hand: a window in one call equals the same frames one call at a time, state carried between calls
    w = feats[None, :pred.window]
    h = c = got.head.zeros(1)
    prev = w[:, 0]
    for t in range(pred.window):
        p, h, c = got.head.run(w[:, t:t + 1], prev, h, c)
        prev = w[:, t]
    np.testing.assert_allclose(p, got.head.windows(w), atol=1e-6)


def test_label_with_the_bundle_never_imports_torch_and_matches_the_checkpoint(bundle, env, tmp_path):
    pred, clips, _ = env
    videos = tmp_path / "videos"
    videos.mkdir()
    for path in clips.values():
        shutil.copy(path, videos / path.name)
    (videos / "broken.mp4").write_text("not a video\n")
    ref = tmp_path / "ckpt.csv"
    list(label_videos([videos], pred, out=ref, workers=0))
    e, marker = no_torch_env(tmp_path)
    out, timeline = tmp_path / "bundle.csv", tmp_path / "bundle.jsonl"
    cmd = [sys.executable, "-m", "action_rec.cli", "label", str(videos), "--ckpt", str(bundle), "--out", str(out),
           "--jsonl", str(timeline), "--workers", "1", "--quiet"]
    r = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr  # the broken file: an error row, as on the checkpoint path
    assert not marker.exists(), f"imported: {marker.read_text()}"
    a, b = read_csv(ref), read_csv(out)
    assert list(a) == list(b) and a["broken.mp4"]["status"] == b["broken.mp4"]["status"] == "error"
    for name in a:
        for col in a[name]:
            if col.startswith("p_") or col == "confidence":
                assert float(b[name][col] or 0) == pytest.approx(float(a[name][col] or 0), abs=1e-4)
            elif col != "error":
                assert b[name][col] == a[name][col], (name, col)
    assert a["falling.mp4"]["fall_events"] != "0"
    assert len(timeline.read_text().splitlines()) == int(a["falling.mp4"]["windows"]) + int(a["walking.mp4"]["windows"])
    # a second run resumes (nothing to do), still without torch
    r = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=120)
    assert "already in" in r.stdout and not marker.exists()


def test_live_with_the_bundle_never_imports_torch_and_matches_the_checkpoint(bundle, env, tmp_path):
    pred, clips, _ = env
    rc, want, log = live(pred, clips["falling"], "--headless", "--no-realtime")
    assert rc == 0, log
    e, marker = no_torch_env(tmp_path)
    r = subprocess.run([sys.executable, "-m", "action_rec.cli", "live", "--ckpt", str(bundle), "--source",
                        str(clips["falling"]), "--headless", "--no-realtime", "--threads", "1"],
                       env=e, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not marker.exists(), f"imported: {marker.read_text()}"
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert events(got) == events(want) == ["fall_start", "fall_end"]
    assert [u["window_s"] for u in updates(got)] == [u["window_s"] for u in updates(want)]
    np.testing.assert_allclose([[u["probs"][c] for c in NAMES] for u in updates(got)],
                               [[u["probs"][c] for c in NAMES] for u in updates(want)], atol=1e-4)


def test_export_command_refuses_to_overwrite_and_person_checkpoints(make_checkpoint, tmp_path, capsys):
    ck = make_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "model"
    assert main(["export", "--ckpt", str(ck), "--out", str(out)]) == 0
    assert "bundle:" in capsys.readouterr().out
    first = json.loads((out / "bundle.json").read_text())
    assert main(["export", "--ckpt", str(ck), "--out", str(out)]) == 2
    assert "already there; add --force" in capsys.readouterr().err
    assert main(["export", "--ckpt", str(ck), "--out", str(out), "--force"]) == 0
    again = json.loads((out / "bundle.json").read_text())  # a random-weight backbone differs at every build
    assert again["files"]["head.onnx"] == first["files"]["head.onnx"] and again["checkpoint"] == first["checkpoint"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.")]  # no temporary folders left
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["export", "--ckpt", str(ck), "--out", str(other), "--force"]) == 2
    assert "not a bundle" in capsys.readouterr().err and (other / "keep.txt").exists()
    ckpt = torch.load(ck, weights_only=True)
    ckpt["hyper_parameters"]["data_spec"]["backbone"]["features"] = "person"
    torch.save(ckpt, tmp_path / "person.ckpt")
    assert main(["export", "--ckpt", str(tmp_path / "person.ckpt"), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "features: person" in err and "ultralytics" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def _missing(b):
    (b / "head.onnx").unlink()


def _altered(b):
    data = bytearray((b / "backbone.onnx").read_bytes())
    data[len(data) // 2] ^= 1
    (b / "backbone.onnx").write_bytes(bytes(data))


def _newer(b):
    meta = json.loads((b / "bundle.json").read_text())
    (b / "bundle.json").write_text(json.dumps({**meta, "format_version": FORMAT_VERSION + 1}))


def _not_json(b):
    (b / "bundle.json").write_text("{ this is not json")


def _no_manifest(b):
    (b / "bundle.json").unlink()


def _field_missing(b):
    meta = json.loads((b / "bundle.json").read_text())
    del meta["fall_rule"]
    (b / "bundle.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("spoil, msg", [(_missing, "head.onnx is missing"), (_altered, "does not match the sha256"),
                                        (_newer, "newer action_rec"), (_not_json, "not a readable bundle manifest"),
                                        (_no_manifest, "no bundle.json"), (_field_missing, "no fall_rule")])
@pytest.mark.parametrize("command", ["label", "live"])
def test_a_bad_bundle_is_a_one_line_error(bundle, env, tmp_path, capsys, spoil, msg, command):
    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    spoil(bad)
    clip = str(env[1]["walking"])
    args = [clip, "--out", str(tmp_path / "l.csv")] if command == "label" else ["--source", clip, "--headless"]
    assert main([command, "--ckpt", str(bad), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_scale_out_options_with_a_bundle_are_a_one_line_error(bundle, env, tmp_path, capsys):
    """--devices/--num-nodes run the checkpoint with Lightning: with a bundle they are refused in one line."""
    out = tmp_path / "l.csv"
    assert main(["label", str(env[1]["walking"]), "--ckpt", str(bundle), "--out", str(out), "--devices", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--devices/--num-nodes" in err and len(err.splitlines()) == 1 and not out.exists()
