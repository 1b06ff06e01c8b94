"""Batch labelling end to end: discovery, every row, resume after SIGKILL, CSV/JSONL agreement,
annotated copies, and the 2-process Lightning path against the single-process one."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from action_rec.cli import main
from action_rec.decision import decide
from action_rec.labeling import InputError, LabelRun, find_videos, label_videos
from tests.conftest import write_video

NAMES = ["falling", "running", "walking"]


def env():  # at call time: conftest points the ONNX export cache at a temporary folder
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def file_weights_checkpoint(path):
    """Like conftest.write_checkpoint, but the random backbone weights are a file, so every process that
    loads the checkpoint builds the same backbone (needed to compare processes)."""
    from efficientnet_lite_pytorch import EfficientNet

    from action_rec.backbones import build_backbone
    from action_rec.model.classifier import ActionClassifier

    torch.manual_seed(0)
    weights = path.with_suffix(".weights.pt")
    torch.save(EfficientNet.from_name("efficientnet-lite0", image_size=64).state_dict(), weights)
    bb = build_backbone("efficientnet_lite0", weights=str(weights), image_size=64)
    spec = {"backbone": bb.identity(), "weights_arg": str(weights), "fps": 4.0, "window": 6,
            "padding": "repeat_last"}
    model = ActionClassifier(NAMES, bb.feature_dim, spec, hidden=32)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return file_weights_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt")


GOOD = {"a.mp4": 24, "b.mp4": 40, "sub/deep/c.avi": 30}  # frames at 10 fps
BAD = {"corrupt.mp4": "corrupt or truncated", "truncated.mp4": "cannot open", "renamed.mp4": "cannot open",
       "empty.mp4": "empty file"}


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    root = tmp_path_factory.mktemp("footage")
    for i, (name, n) in enumerate(GOOD.items()):
        write_video(root / name, n_frames=n, fps=10, seed=i)
    long = write_video(root / "long.mp4", n_frames=60, fps=10, seed=9).read_bytes()
    data = bytearray(long)
    data[2000:-2000:50] = np.random.default_rng(0).integers(0, 256, len(data[2000:-2000:50]),
                                                            dtype=np.uint8).tobytes()
    (root / "corrupt.mp4").write_bytes(bytes(data))
    (root / "truncated.mp4").write_bytes(long[: len(long) // 2])
    (root / "long.mp4").unlink()
    (root / "renamed.mp4").write_text("this is a text file\n" * 40)
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.txt").write_text("not a video extension: never listed")
    (root / "sub" / "clip.srt").write_text("1\n")
    return root


def read_csv(path):
    with open(path, newline="") as f:
        return {r["path"]: r for r in csv.DictReader(f)}


def read_jsonl(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        d = json.loads(line)
        out.setdefault(d["path"], []).append(d)
    return out


def test_find_videos(footage):
    rels = sorted(j.rel for j in find_videos([footage]))
    assert rels == sorted([*GOOD, *BAD])  # nested, any video extension; .txt/.srt never listed
    assert sorted(j.rel for j in find_videos([footage], recursive=False)) == sorted(
        n for n in [*GOOD, *BAD] if "/" not in n)
    assert [j.rel for j in find_videos([footage / "notes.txt"])] == ["notes.txt"]  # named files are tried
    assert sorted(j.rel for j in find_videos([str(footage / "**" / "*.avi")])) == ["c.avi"]
    assert all(os.path.isabs(j.path) and j.size >= 0 for j in find_videos([footage]))
    with pytest.raises(InputError, match="no such file"):
        find_videos([footage / "missing"])


def check_rows(rows, footage, timeline):
    assert set(rows) == {str(footage / n) for n in [*GOOD, *BAD]}
    for name, n in GOOD.items():
        r = rows[str(footage / name)]
        st = (footage / name).stat()
        assert r["status"] == "ok" and r["label"] in NAMES and r["error"] == ""
        assert (int(r["size"]), int(r["mtime_ns"])) == (st.st_size, st.st_mtime_ns)
        assert float(r["duration_s"]) == pytest.approx(n / 10)
        p = np.array([float(r[f"p_{c}"]) for c in NAMES])
        assert p.sum() == pytest.approx(1, abs=1e-4) and float(r["confidence"]) == pytest.approx(
            p[NAMES.index(r["label"])], abs=1e-6) or r["fall_events"] != "0"
        # the timeline agrees with the row: one line per window, same mean and the same decision
        lines = timeline[r["path"]]
        assert len(lines) == int(r["windows"]) >= 1
        wp = np.array([[d["probs"][c] for c in NAMES] for d in lines])
        assert np.allclose(wp.mean(0), p, atol=2e-6)
        idx, conf, events = decide(wp, NAMES)
        assert NAMES[idx] == r["label"] and conf == pytest.approx(float(r["confidence"]), abs=1e-5)
        assert int(r["fall_events"]) == len(events)
        assert all(0 <= d["start_s"] < d["end_s"] <= n / 10 + 1e-6 for d in lines)
    for name, why in BAD.items():
        r = rows[str(footage / name)]
        assert r["status"] == "error" and why in r["error"] and r["label"] == "" and r["p_walking"] == ""
        assert r["path"] not in timeline


def test_label_folder_rows_resume_and_annotate(footage, ckpt, tmp_path, capsys):
    out, tl, ann = tmp_path / "labels.csv", tmp_path / "t.jsonl", tmp_path / "ann"
    args = ["label", str(footage), "--ckpt", str(ckpt), "--out", str(out), "--jsonl", str(tl),
            "--annotate", str(ann), "--workers", "1", "--quiet"]
    assert main(args) == 1  # some failed
    text = capsys.readouterr().out
    assert "labelled 7 videos" in text and "errors: 4" in text and "empty file" in text
    rows = read_csv(out)
    check_rows(rows, footage, read_jsonl(tl))
    # annotated copies mirror the tree, keep every frame, and carry the overlay
    import cv2

    for name, n in GOOD.items():
        cap = cv2.VideoCapture(str(ann / Path(name).with_suffix(".mp4")))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
        ok, frame = cap.read()
        ok0, frame0 = cv2.VideoCapture(str(footage / name)).read()
        assert ok and ok0 and np.abs(frame.astype(int) - frame0).mean() > 5
    assert sorted(p.name for p in ann.rglob("*") if p.is_file()) == ["a.mp4", "b.mp4", "c.mp4"]

    # re-run: the ok videos are skipped, the failed ones retried; still one row per video
    assert main(args) == 1
    assert "4 videos" in capsys.readouterr().out.splitlines()[0]
    again = read_csv(out)
    assert len(again) == len(rows) and all(again[p] == rows[p] for p in rows if rows[p]["status"] == "ok")
    assert len(out.read_text().splitlines()) == 1 + len(rows)
    # a changed video or a missing annotated copy is labelled again; --overwrite relabels all
    os.utime(footage / "a.mp4", ns=(time.time_ns(), time.time_ns()))
    (ann / "b.mp4").unlink()
    done = list(label_videos([footage], ckpt, out=out, jsonl=tl, annotate=ann, workers=0))
    assert sorted(Path(r.path).name for r in done if r.ok) == ["a.mp4", "b.mp4"]
    check_rows(read_csv(out), footage, read_jsonl(tl))
    assert len(list(label_videos([footage], ckpt, out=out, jsonl=tl, overwrite=True, workers=0))) == 7
    check_rows(read_csv(out), footage, read_jsonl(tl))


def test_all_good_exits_zero_and_threshold_makes_falls(footage, ckpt, tmp_path, capsys):
    out = tmp_path / "l.csv"
    good = [str(footage / n) for n in GOOD]
    assert main(["label", *good, "--ckpt", str(ckpt), "--out", str(out), "--workers", "0", "--quiet",
                 "--threshold", "0.0", "--stride", "1"]) == 0
    assert "errors: 0" in capsys.readouterr().out
    for name, n in GOOD.items():
        r = read_csv(out)[str(footage / name)]
        # every window's fall probability is over 0: one event from the start, and the video is a fall
        assert r["label"] == "falling" and r["fall_events"] == "1" and r["first_fall_s"] == "0.000"
        sampled = -(-n * 4 // 10)  # frames at 4 fps: ceil(duration * 4)
        assert int(r["windows"]) == max(1, sampled - 6 + 1)  # stride 1, window 6


def test_user_errors_before_any_work(footage, ckpt, tmp_path, capsys):
    out = tmp_path / "l.csv"
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    for args, msg in (([str(footage), "--ckpt", str(tmp_path / "none.ckpt")], "no such checkpoint"),
                      ([str(footage), "--ckpt", str(foreign)], "not an action_rec checkpoint"),
                      ([str(tmp_path / "nothing")], "no such file or folder"),
                      ([str(footage / "sub" / "*.mov")], "no videos found")):
        args = args if "--ckpt" in args else [*args, "--ckpt", str(ckpt)]
        assert main(["label", *args, "--out", str(out), "--quiet"]) == 2
        assert msg in capsys.readouterr().err
        assert not out.exists()
    out.write_text("path,label\n")
    assert main(["label", str(footage), "--ckpt", str(ckpt), "--out", str(out), "--quiet"]) == 2
    assert "other columns" in capsys.readouterr().err and out.read_text() == "path,label\n"


@pytest.mark.slow
def test_sigkill_midway_loses_nothing_and_rerun_does_only_the_rest(ckpt, tmp_path):
    folder = tmp_path / "many"
    for i in range(24):
        write_video(folder / f"v{i:02d}.mp4", n_frames=40, fps=10, seed=i)
    out, tl = tmp_path / "l.csv", tmp_path / "t.jsonl"
    cmd = [sys.executable, "-m", "action_rec.cli", "label", str(folder), "--ckpt", str(ckpt), "--out", str(out),
           "--jsonl", str(tl), "--workers", "1", "--batch-frames", "4", "--quiet"]
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while not (out.is_file() and len(out.read_bytes().splitlines()) >= 2):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() - t0 < 120
            time.sleep(0.01)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    # the decoder process notices its parent is gone and exits (no orphans left behind)
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive and children
    text = out.read_text()
    before = read_csv(out) if text.endswith("\n") else None
    assert before is not None, "a half-written CSV line"
    assert 1 <= len(before) < 24 and all(r["status"] == "ok" for r in before.values())
    for line in tl.read_text().splitlines():
        json.loads(line)  # every timeline line complete
    # the worst a kill can leave: half a line in each file; the next start cuts it
    with open(out, "a") as f:
        f.write(f"{folder}/v99.mp4,ok,walk")
    with open(tl, "a") as f:
        f.write('{"path": "x", "start')
    rest = list(label_videos([folder], ckpt, out=out, jsonl=tl, workers=0))
    assert len(rest) == 24 - len(before) and not {r.path for r in rest} & set(before)
    after = read_csv(out)
    assert len(after) == 24 and len(out.read_text().splitlines()) == 25
    assert all(after[p] == before[p] for p in before)
    timeline = read_jsonl(tl)
    assert set(timeline) == set(after) and all(len(timeline[p]) == int(after[p]["windows"]) for p in after)


def test_a_video_that_vanishes_mid_run_is_an_error_row(ckpt, tmp_path):
    from action_rec.labeling import LabelRun

    for name in ("a.mp4", "b.mp4"):
        write_video(tmp_path / "v" / name, n_frames=20, fps=10)
    run = LabelRun([tmp_path / "v"], ckpt, out=tmp_path / "l.csv", workers=0)
    (tmp_path / "v" / "a.mp4").unlink()  # found, then gone before it is read
    got = {Path(r.path).name: r for r in run}
    assert got["a.mp4"].status == "error" and "no such file" in got["a.mp4"].error and got["b.mp4"].ok
    assert read_csv(tmp_path / "l.csv")[str(tmp_path / "v" / "a.mp4")]["status"] == "error"


@pytest.mark.slow
def test_two_process_lightning_predict_matches_single_process(footage, ckpt, tmp_path):
    single, multi = tmp_path / "single.csv", tmp_path / "multi.csv"
    base = ["label", str(footage), "--ckpt", str(ckpt), "--workers", "0", "--quiet"]
    assert main([*base, "--out", str(single), "--jsonl", str(tmp_path / "single.jsonl")]) == 1
    # 7 videos over 2 ranks: uneven shards; rank 0 merges the ranks' part files
    r = subprocess.run([sys.executable, "-m", "action_rec.cli", *base, "--out", str(multi), "--jsonl",
                        str(tmp_path / "multi.jsonl"), "--devices", "2", "--accelerator", "cpu",
                        "--strategy", "ddp"], env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "labelled 7 videos" in r.stdout and "errors: 4" in r.stdout
    paths = [line.split(",")[0] for line in multi.read_text().splitlines()[1:]]
    assert len(paths) == len(set(paths)) == 7  # no duplicates
    assert not list(tmp_path.glob("*.part"))
    a, b = read_csv(single), read_csv(multi)
    assert set(a) == set(b)
    for p in a:
        for k in a[p]:
            if k.startswith("p_") or k == "confidence":
                assert float(a[p][k] or 0) == pytest.approx(float(b[p][k] or 0), abs=1e-4)
            else:
                assert a[p][k] == b[p][k], (p, k)
    check_rows(b, footage, read_jsonl(tmp_path / "multi.jsonl"))


def test_batch_labels_equal_predict_video_and_evaluation_reading(ckpt, tmp_path):
    """Batch mode's decoder processes and cross-video batching change nothing: every window's
    probabilities equal Predictor.predict_video's (the path `evaluate` and training's cache use)."""
    from action_rec.inference import Predictor

    vids = [write_video(tmp_path / f"v{i}.mp4", n_frames=n, fps=10, seed=i) for i, n in enumerate((14, 37, 52))]
    got = {Path(r.path).name: r for r in label_videos([tmp_path], ckpt, out=tmp_path / "l.csv", workers=1)}
    pred = Predictor(ckpt)
    for v in vids:
        ref = pred.predict_video(v)
        r = got[v.name]
        assert r.ok and r.label == ref.label and r.windows == len(ref.window_starts_s)
        np.testing.assert_allclose(r.window_probs, ref.window_probs, atol=1e-5)
        np.testing.assert_allclose(r.window_starts_s, ref.window_starts_s)


def with_resize(ck, resize, dest):
    """A copy of checkpoint `ck` whose backbone identity records another resize policy."""
    data = torch.load(ck, weights_only=True)
    data["hyper_parameters"]["data_spec"]["backbone"]["preprocess"]["resize"] = resize
    torch.save(data, dest)
    return dest


def test_one_backbone_call_over_videos_of_different_aspect_ratios(ckpt, tmp_path):
    """Lightning predict embeds the frames of several videos in one call; a landscape and a portrait video give
    differently shaped "rect" inputs (64x32 and 32x64), and each still gets exactly Predictor.predict_video's windows."""
    from action_rec.inference import Predictor
    from action_rec.labeling.distributed import _LabelModule, _Videos

    wide = write_video(tmp_path / "wide.mp4", n_frames=30, fps=10, size=(96, 48))
    tall = write_video(tmp_path / "tall.mp4", n_frames=25, fps=10, size=(48, 96), seed=1)
    pred = Predictor(with_resize(ckpt, "rect", tmp_path / "rect.ckpt"))
    assert pred.backbone.preprocess.resize == "rect"
    jobs = find_videos([wide, tall])
    items = _Videos(jobs, pred.fps, pred.backbone.preprocess)
    batch = [items[0], items[1]]
    assert {np.shape(b["frames"])[1:3] for b in batch} == {(32, 64), (64, 32)}
    results = _LabelModule(pred, jobs, None).predict_step(batch, 0)
    assert len(results) == 2
    for r in results:
        ref = pred.predict_video(r.path)
        assert r.ok and r.label == ref.label
        np.testing.assert_allclose(r.window_probs, ref.window_probs, atol=1e-5)


def test_checkpoint_keeps_the_resize_policy_it_was_trained_with(make_checkpoint, footage, tmp_path):
    """A model trained with `resize: rect` is run with rect inputs (the default is letterbox), and vice versa."""
    from action_rec.inference import Predictor, load_classifier

    square = make_checkpoint(tmp_path / "square.ckpt")
    rect = with_resize(square, "rect", tmp_path / "rect.ckpt")
    for ck, resize in ((square, "letterbox"), (rect, "rect")):
        pred = Predictor(ck)
        assert pred.backbone.preprocess.resize == resize
        assert pred.backbone.identity() == load_classifier(ck).hparams.data_spec["backbone"]
    assert pred.predict_video(footage / "a.mp4").label in NAMES


@pytest.mark.skipif(__import__("importlib").util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_int8_checkpoint_labels_with_its_int8_backbone(footage, make_checkpoint, tmp_path, capsys):
    from action_rec.inference import Predictor

    ck = make_checkpoint(tmp_path / "int8.ckpt", image_size=224, precision="int8")
    pred = Predictor(ck)
    assert pred.backbone.precision == "int8" and pred.backbone.runtime == "onnx"
    assert pred.backbone.identity() == pred.model.hparams.data_spec["backbone"]  # the features it was trained on
    out = tmp_path / "l.csv"
    assert main(["label", str(footage / "a.mp4"), str(footage / "b.mp4"), "--ckpt", str(ck), "--out", str(out),
                 "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(r["label"] in NAMES for r in rows)
    # the int8 network runs on the CPU only: asking for a GPU is a clear error before any work, nothing written
    out2 = tmp_path / "gpu.csv"
    assert main(["label", str(footage), "--ckpt", str(ck), "--out", str(out2), "--device", "cuda", "--quiet"]) == 2
    assert "only on the CPU" in capsys.readouterr().err and not out2.exists()


def test_checkpoint_of_an_older_int8_recipe_is_a_clear_error(make_checkpoint, tmp_path):
    """Recipe 1 gave other (and CPU-dependent) features: a model trained on them must be retrained, not fed
    today's features silently."""
    import torch

    from action_rec.inference import CheckpointError, Predictor

    ck = make_checkpoint(tmp_path / "int8.ckpt", image_size=224, precision="int8")
    data = torch.load(ck, weights_only=True)
    data["hyper_parameters"]["data_spec"]["backbone"]["quant_version"] = 1
    torch.save(data, ck)
    with pytest.raises(CheckpointError, match="INT8 recipe 1.*retrain"):
        Predictor(ck)
    assert main(["label", str(tmp_path), "--ckpt", str(ck), "--out", str(tmp_path / "x.csv"), "--quiet"]) == 2
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------------------ bad input
def label_cmd(*args):
    return [sys.executable, "-m", "action_rec.cli", "label", *map(str, args)]


def test_two_runs_on_one_output_never_duplicate(ckpt, tmp_path):
    """Two real processes on the same --out/--jsonl (a cron job overlapping a manual run): the second stops
    at once with a message naming the first; the first finishes with one row and one set of windows per
    video. The first is paused (SIGSTOP) while holding the outputs, so the overlap is certain."""
    folder = tmp_path / "v"
    for i in range(4):
        write_video(folder / f"v{i}.mp4", n_frames=30, fps=10, seed=i)
    out, tl = tmp_path / "l.csv", tmp_path / "t.jsonl"
    args = [folder, "--ckpt", ckpt, "--out", out, "--jsonl", tl, "--workers", "0", "--quiet"]
    first = subprocess.Popen(label_cmd(*args), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not out.is_file():  # the CSV header is written only once the lock is held
            assert first.poll() is None, first.communicate()
            assert time.monotonic() - t0 < 120
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)
        second = subprocess.run(label_cmd(*args), env=env(), capture_output=True, text=True, timeout=120)
        first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=120)
    finally:
        first.kill()
    assert second.returncode == 2, second.stderr
    assert (f"action-rec label: error: --out {out} is being written by another run (action-rec label, "
            f"pid {first.pid} on") in second.stderr and "Traceback" not in second.stderr
    assert first.returncode == 0, stderr
    paths = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert sorted(paths) == sorted(str(p) for p in folder.glob("*.mp4"))  # 4 rows, none twice
    rows = read_csv(out)
    windows = [(d["path"], d["start_s"]) for d in map(json.loads, tl.read_text().splitlines())]
    assert len(windows) == len(set(windows)) == sum(int(r["windows"]) for r in rows.values())
    # and once the first is done, the same command is a no-op (the lock went with the process)
    assert main(["label", *map(str, args)]) == 0


def test_rerun_repairs_what_two_overlapping_runs_left(footage, ckpt, tmp_path, capsys):
    out, tl = tmp_path / "l.csv", tmp_path / "t.jsonl"
    good = [str(footage / n) for n in GOOD]
    args = ["label", *good, "--ckpt", str(ckpt), "--out", str(out), "--jsonl", str(tl), "--workers", "0", "--quiet"]
    assert main(args) == 0
    before = read_csv(out)
    head, *body = out.read_text().splitlines(keepends=True)
    out.write_text(head + "".join(body) + "".join(body))  # what 7fdd18c left: every row and window twice
    tl.write_text(tl.read_text() * 2)
    capsys.readouterr()
    assert main(args) == 0
    cap = capsys.readouterr()
    assert "3 duplicate row(s)" in cap.err and "duplicate window line(s)" in cap.err
    assert "labelled 0 videos" in cap.out and "3 already in" in cap.out
    assert len(out.read_text().splitlines()) == 4 and read_csv(out) == before
    check_rows_subset = read_jsonl(tl)
    assert all(len(check_rows_subset[p]) == int(before[p]["windows"]) for p in before)


def test_outputs_on_one_path_or_on_an_input_are_refused(footage, ckpt, tmp_path, capsys):
    vid = footage / "a.mp4"
    original = vid.read_bytes()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [
        (["--out", tmp_path / "x.csv", "--jsonl", tmp_path / "x.csv"],
         f"--out {tmp_path}/x.csv and --jsonl {tmp_path}/x.csv are the same path"),
        (["--out", tmp_path / "y.csv", "--annotate", tmp_path / "sub" / ".." / "y.csv"], "are the same path"),
        (["--out", tmp_path / "adir"], f"--out {tmp_path}/adir: is a folder; give a file name"),
        (["--out", tmp_path / "l.csv", "--jsonl", tmp_path / "adir"], "--jsonl"),
        (["--out", tmp_path / "l.csv", "--annotate", tmp_path / "afile"], "--annotate"),
        (["--out", tmp_path / "afile" / "l.csv"], "is a file, not a folder"),
        (["--out", vid], "is one of the input videos"),
        (["--out", tmp_path / "l.csv", "--jsonl", vid], "is one of the input videos"),
        (["--out", tmp_path / "l.csv", "--annotate", footage], "would replace the video"),
    ]
    for extra, msg in cases:
        rc = main(["label", str(vid), str(footage / "b.mp4"), "--ckpt", str(ckpt), "--quiet", *map(str, extra)])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("action-rec label: error: ") and msg in err, (extra, err)
        assert err.count("\n") == 1
    assert vid.read_bytes() == original  # not truncated, not replaced
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "l.csv").exists()
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("args, msg", [
    (["--workers", "-1"], "argument --workers: must be >= 0, got -1"),
    (["--threshold", "2"], "argument --threshold: must be between 0 and 1, got 2"),
    (["--threshold", "-1"], "argument --threshold: must be between 0 and 1, got -1"),
    (["--fall-k", "0"], "argument --fall-k: must be >= 1, got 0"),
    (["--stride", "0"], "argument --stride: must be >= 1, got 0"),
    (["--thresh", "0.5"], "unrecognized arguments: --thresh 0.5 — did you mean '--threshold'?"),
    (["--work", "1"], "unrecognized arguments: --work 1"),
])
def test_out_of_range_and_abbreviated_options_are_refused(footage, ckpt, tmp_path, capsys, args, msg):
    out = tmp_path / "l.csv"
    with pytest.raises(SystemExit) as e:
        main(["label", str(footage / "a.mp4"), "--ckpt", str(ckpt), "--out", str(out), *args])
    assert e.value.code == 2 and f"action-rec label: error: {msg}" in capsys.readouterr().err
    assert not out.exists()
    from action_rec.utils.errors import UsageError
    if args[0] in ("--workers", "--threshold", "--fall-k"):  # the Python API checks the same ranges
        kw = {"workers": int(args[1])} if args[0] == "--workers" else \
             {"threshold": float(args[1])} if args[0] == "--threshold" else {"fall_k": int(args[1])}
        with pytest.raises(UsageError):
            LabelRun([footage / "a.mp4"], ckpt, out=out, **kw)


def test_a_one_frame_clip_raises_no_fall_event(ckpt, tmp_path):
    """--threshold 0 puts every window over the threshold: a clip of k = 2 windows or more raises an event;
    a one-frame clip is one window, so it cannot (its label still follows the mean probability)."""
    one = write_video(tmp_path / "v" / "one.mp4", n_frames=1, fps=10)
    long = write_video(tmp_path / "v" / "long.mp4", n_frames=40, fps=10)
    out = tmp_path / "l.csv"
    assert main(["label", str(tmp_path / "v"), "--ckpt", str(ckpt), "--out", str(out), "--workers", "0", "--quiet",
                 "--threshold", "0", "--fall-k", "2"]) == 0
    rows = read_csv(out)
    assert rows[str(long)]["fall_events"] == "1" and rows[str(long)]["label"] == "falling"
    assert rows[str(one)]["windows"] == "1" and rows[str(one)]["fall_events"] == "0"
    assert rows[str(one)]["first_fall_s"] == ""
    p = {c: float(rows[str(one)][f"p_{c}"]) for c in NAMES}
    assert rows[str(one)]["label"] == max(p, key=p.get)


def test_entries_that_are_not_video_files_are_reported(ckpt, tmp_path, capsys):
    folder = tmp_path / "v"
    write_video(folder / "ok.mp4", n_frames=20, fps=10)
    (folder / "folder.mp4").mkdir()
    (folder / "loop.mp4").symlink_to("loop.mp4")
    (folder / "dangling.mp4").symlink_to("nowhere.mp4")
    (tmp_path / "self").symlink_to("self")
    out = tmp_path / "l.csv"
    assert main(["label", str(folder), "--ckpt", str(ckpt), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "passed over 3 entries named like videos that are not video files" in text
    assert f"folder named like a video (1): {folder}/folder.mp4" in text
    assert f"symlink loop (1): {folder}/loop.mp4" in text and f"broken symlink (1): {folder}/dangling.mp4" in text
    assert list(read_csv(out)) == [str(folder / "ok.mp4")]
    assert main(["label", str(tmp_path / "self"), "--ckpt", str(ckpt), "--out", str(out)]) == 2
    assert "self: symlink loop (too many levels of symbolic links)" in capsys.readouterr().err


def test_stale_temp_copies_of_a_killed_run_are_removed(footage, ckpt, tmp_path, capsys):
    ann = tmp_path / "ann"
    stale = [ann / ".a.mp4.q_ubuvge.mp4", ann / "sub" / "deep" / ".c.mp4.1a2b3c4d.mp4"]
    kept = [ann / ".notes.txt", ann / "mine.mp4", ann / ".x.partial.mp4"]
    for p in stale + kept:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\0" * 10)
    assert main(["label", str(footage / "a.mp4"), "--ckpt", str(ckpt), "--out", str(tmp_path / "l.csv"),
                 "--annotate", str(ann), "--workers", "0", "--quiet"]) == 0
    assert "removed 2 temporary file(s) an interrupted run left" in capsys.readouterr().err
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert (ann / "a.mp4").is_file()


def test_outputs_follow_the_umask(footage, ckpt, tmp_path):
    old = os.umask(0o022)
    try:
        out, tl, ann = tmp_path / "l.csv", tmp_path / "t.jsonl", tmp_path / "ann"
        assert main(["label", str(footage / "a.mp4"), "--ckpt", str(ckpt), "--out", str(out), "--jsonl", str(tl),
                     "--annotate", str(ann), "--workers", "0", "--quiet"]) == 0
        for p in (out, tl, ann / "a.mp4"):
            assert p.stat().st_mode & 0o777 == 0o644, p
        os.umask(0o002)
        assert main(["label", str(footage / "b.mp4"), "--ckpt", str(ckpt), "--out", str(tmp_path / "m.csv"),
                     "--workers", "0", "--quiet"]) == 0
        assert (tmp_path / "m.csv").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_a_checkpoint_trained_on_a_region_labels_frames_of_that_size_cut_to_it(tmp_path):
    """data.regions travels in the checkpoint: label (a decoder thread and worker processes alike) and predict_video
    read a 128x48 side-by-side clip's right half, as training did, and a clip of another size whole."""
    from action_rec.inference.predictor import Predictor
    from action_rec.video import read_sampled

    from action_rec.backbones import build_backbone
    from action_rec.model.classifier import ActionClassifier

    torch.manual_seed(0)
    bb = build_backbone("efficientnet_lite0", weights="default", image_size=64)  # ImageNet: features that vary
    spec = {"backbone": bb.identity(), "weights_arg": "default", "fps": 4.0, "window": 6, "padding": "repeat_last",
            "regions": {"128x48": "0.5,0,1,1"}}
    model = ActionClassifier(NAMES, bb.feature_dim, spec, hidden=32)
    path = tmp_path / "region.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    wide = write_video(tmp_path / "v" / "wide.mp4", n_frames=30, fps=10, size=(128, 48), seed=1)
    cap, vw = cv2.VideoCapture(str(wide)), None
    frames_in = [cap.read()[1] for _ in range(30)]
    vw = cv2.VideoWriter(str(wide), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (128, 48))
    for f in frames_in:
        f[:, :64] = 200  # a flat "depth map" beside the moving picture
        vw.write(f)
    vw.release()
    plain = write_video(tmp_path / "v" / "plain.mp4", n_frames=30, fps=10, size=(64, 48), seed=2)
    pred = Predictor(path)
    p_of = lambda r: np.array([r.probs[c] for c in NAMES])  # noqa: E731
    frames = {p: read_sampled(p, pred.fps)[0] for p in (wide, plain)}
    expect = {str(wide): pred.predict_features(str(wide), pred.backbone.embed([f[:, 64:] for f in frames[wide]])),
              str(plain): pred.predict_features(str(plain), pred.backbone.embed(frames[plain]))}
    whole = pred.predict_features(str(wide), pred.backbone.embed(frames[wide]))
    assert not np.allclose(p_of(whole), p_of(expect[str(wide)]), atol=1e-4)  # the region matters to this model
    for p, e in expect.items():
        np.testing.assert_allclose(p_of(pred.predict_video(p)), p_of(e), atol=1e-5)
    for workers in (0, 1):
        got = {r.path: r for r in label_videos([tmp_path / "v"], pred, out=tmp_path / f"l{workers}.csv",
                                               annotate=tmp_path / f"a{workers}", workers=workers)}
        for p, e in expect.items():
            np.testing.assert_allclose(p_of(got[p]), p_of(e), atol=1e-4)
    # the annotated copy shows what the model read: the right half of the side-by-side clip, the other whole
    for name, size in (("wide.mp4", (64, 48)), ("plain.mp4", (64, 48))):
        cap = cv2.VideoCapture(str(tmp_path / "a0" / name))
        assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == size


def test_with_workers_on_every_core_the_lstm_runs_on_one_thread_and_the_pool_is_restored(ckpt, tmp_path,
                                                                                          monkeypatch):
    """The decoder processes embed on every core; this process's LSTM calls must not spread torch's pool over the
    same cores (an ensemble head lost 10 % of the throughput so). Afterwards the caller's pool is as it was."""
    from action_rec.inference import Predictor

    for i in range(2):
        write_video(tmp_path / "v" / f"v{i}.mp4", n_frames=20, fps=10, seed=i)
    pred, seen = Predictor(ckpt), []
    real = pred.window_probs

    def spy(*a, **kw):
        seen.append(torch.get_num_threads())
        return real(*a, **kw)

    monkeypatch.setattr(pred, "window_probs", spy)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert all(r.ok for r in label_videos([tmp_path / "v"], pred, out=tmp_path / "l.csv", workers=2))
        assert seen == [1, 1] and torch.get_num_threads() == 2
        seen.clear()  # in-process decoding (workers 0): this process does everything, its pool untouched
        assert all(r.ok for r in label_videos([tmp_path / "v"], pred, out=tmp_path / "m.csv", workers=0))
        assert seen == [2, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
