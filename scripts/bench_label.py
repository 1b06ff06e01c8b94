#!/usr/bin/env python
"""Benchmark batch labelling (`action-rec label`) against the naive design, side by side in one run.

Data: a generated folder of 640x480, 30-fps mp4 videos (synthetic clips from action_rec.synth, resampled to
30 fps and resized to 640x480, several clips per video), made once and reused (--data).

  naive:   decode every frame, backbone on every frame (batch 1), re-run the LSTM on the last T
           features at every frame (what a frame-by-frame loop does); on --naive-videos of the videos.
  batched: labeling.LabelRun - decode only the frames at the checkpoint's rate; on a CPU each worker
           process decodes and embeds its own videos (one thread each, torch-free), all windows of a
           video go through the LSTM in one call, labels.csv is written as it goes. Timed from the
           start of the run (worker start-up included, ~1 s: use enough video to amortise it).

Both use the same Predictor (checkpoint, backbone and runtime), loaded before timing. The figure is video
seconds labelled per wall-clock second ("x real time"). Other processes on the machine distort it; the
load average is printed. workers=0 decodes in a thread of the main process instead of worker processes.

Expect the backbone to bound the batched design; the script measures that ceiling itself (the "per video second on
one core" line: one worker's decoding and backbone time, so cores x video-s / CPU-s is the most any design that
decodes every frame and embeds every sampled frame can reach). On the two 2-core dev CPUs seen so far (AVX-512
VNNI), int8 efficientnet_lite0 @224, 640x480 mp4v: decoding 12-15 ms, backbone 27-36 ms per video second, so a
ceiling of 39-51x real time; the naive design, the same int8 backbone at batch 1 on every frame, ran 4-6x.

    python scripts/bench_label.py                                  # runs/quickstart/best.ckpt if present
    python scripts/bench_label.py --ckpt model.ckpt --videos 30 --seconds 20 --workers 2
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

QUICKSTART = Path("runs/quickstart/best.ckpt")


def _make_video(job) -> str:
    from action_rec.synth import CLASSES, render_clip

    path, seed, seconds = job
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < seconds * 30:
        frames, fps = render_clip(CLASSES[rng.integers(len(CLASSES))], int(rng.integers(1 << 31)))
        # resample to 30 fps by time (repeat/skip the clip's frames) and resize to 640x480
        n = int(len(frames) / fps * 30)
        for i in range(n):
            out.append(cv2.resize(frames[min(int(i / 30 * fps), len(frames) - 1)], (640, 480),
                                  interpolation=cv2.INTER_LINEAR))
    tmp = Path(path).with_name(".tmp-" + Path(path).name)
    w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for f in out[:int(seconds * 30)]:
        w.write(f)
    w.release()
    os.replace(tmp, path)
    return path


def make_data(folder: Path, videos: int, seconds: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(str(folder / f"video_{i:03d}_{int(seconds)}s.mp4"), i, seconds) for i in range(videos)]
    todo = [j for j in jobs if not Path(j[0]).is_file()]
    if todo:
        print(f"generating {len(todo)} videos of {seconds:.0f} s (640x480, 30 fps) in {folder} ...", flush=True)
        with mp.get_context("spawn").Pool(os.cpu_count() or 1) as pool:
            pool.map(_make_video, todo)
    return [Path(j[0]) for j in jobs]


def untrained_quickstart(path: Path) -> Path:
    """The quick-start settings, untrained: efficientnet_lite0 default weights, 224 px, int8, 8 fps, window 16."""
    import torch

    from action_rec.backbones import build_backbone
    from action_rec.model.classifier import ActionClassifier

    torch.manual_seed(0)
    bb = build_backbone("efficientnet_lite0", weights="default", image_size=224, precision="int8")
    spec = {"backbone": bb.identity(), "weights_arg": "default", "fps": 8.0, "window": 16, "padding": "repeat_last"}
    model = ActionClassifier(["falling", "running", "walking"], bb.feature_dim, spec, hidden=256, dropout=0.5)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def runtime_of(backbone) -> str:
    """What runs the networks: the backbone's runtime; for person features also the detector's, and the pose
    network's (which is not torch's)."""
    from action_rec.backbones.openvino_core import openvino_available

    def resolved(runtime, otherwise):  # "auto": OpenVINO where it is installed
        return ("openvino" if openvino_available() else otherwise) if runtime == "auto" else runtime

    inner = getattr(backbone, "backbone", backbone)
    net = getattr(getattr(inner, "net", None), "runtime", None)  # the pose network's own runtime
    out = resolved(net, "litert") if net else getattr(inner, "runtime", "torch")
    detector = getattr(backbone, "detector", None)
    return out + (f", detector {resolved(detector.runtime, 'torch')}" if detector is not None else "")


def naive(pred, videos: list[Path]) -> tuple[float, float, int]:
    """-> (video seconds, wall seconds, frames) of the frame-by-frame design."""
    import torch

    from action_rec.decision import decide

    video_s, frames, t0 = 0.0, 0, time.perf_counter()
    for v in videos:
        cap = cv2.VideoCapture(str(v))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        last = collections.deque(maxlen=pred.window)
        probs = []
        embedder = pred.backbone.video_embedder()  # person features: one tracker per video
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)]
            feat = (embedder.embed(rgb, batch_size=1) if pred.backbone.fits_frames else embedder.embed(rgb))[0]
            last.append(feat)
            x = np.stack(list(last) + [last[-1]] * (pred.window - len(last)))  # repeat-last padding at start
            with torch.inference_mode():
                probs.append(pred.model(torch.from_numpy(x)[None].float()).softmax(-1)[0].numpy())
            frames += 1
        cap.release()
        decide(np.asarray(probs), pred.class_names, pred.rule)
        video_s += frames and len(probs) / fps
    return video_s, time.perf_counter() - t0, frames


def stages(pred, video: Path) -> tuple[float, float, float]:
    """-> (video seconds, decoding s, backbone s) of one worker's pipeline on `video`, each on one thread: per video
    second, what every design that decodes every frame and embeds each sampled frame must spend."""
    import torch

    from action_rec.video import iter_sampled, probe
    from action_rec.video.decoding import iter_fitted

    cv_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # a torch-runtime backbone embeds with torch's threads (worker processes use 1)
    try:
        embedder = pred.backbone.worker_embedder(threads=1)
        embedder.embed(np.zeros((1, 480, 640, 3), np.uint8))  # builds its one-thread session: start-up, not per video
        t0 = time.perf_counter()
        if pred.backbone.fits_frames:
            frames = [f for _, f in iter_fitted(video, pred.fps, pred.backbone.preprocess, threads=1)]
        else:  # person features: whole frames, the detector and its crops included in the "backbone" time
            frames = [f for _, f in iter_sampled(video, pred.fps, threads=1)]
        t1 = time.perf_counter()
        embedder.video_embedder().embed(np.stack(frames))
        t2 = time.perf_counter()
    finally:
        cv2.setNumThreads(cv_threads)
        torch.set_num_threads(torch_threads)
    return probe(video).duration_s, t1 - t0, t2 - t1


def batched(pred, videos: list[Path], workers: int, out: Path) -> tuple[float, float, int, int]:
    from action_rec.labeling import LabelRun

    t0 = time.perf_counter()
    video_s, frames, errors = 0.0, 0, 0
    for r in LabelRun([str(v) for v in videos], pred, out=str(out), overwrite=True, workers=workers):
        video_s += r.duration_s or 0.0
        frames += r.frames
        errors += not r.ok
    return video_s, time.perf_counter() - t0, frames, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    ap.add_argument("--ckpt", help=f"trained checkpoint (default: {QUICKSTART} if it exists, else an untrained "
                                   "checkpoint with the quick-start settings)")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "action_rec_bench_label"))
    ap.add_argument("--videos", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each video")
    ap.add_argument("--naive-videos", type=int, default=2, help="videos the (slow) naive design labels")
    ap.add_argument("--workers", default="0,1,2", help="decoder processes to try, comma-separated")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = ap.parse_args()
    import torch

    from action_rec.inference import CheckpointError, Predictor

    if a.threads:
        torch.set_num_threads(a.threads)
    videos = make_data(Path(a.data), a.videos, a.seconds)
    tmp = Path(tempfile.mkdtemp(prefix="bench_label_"))
    try:
        if a.ckpt or QUICKSTART.is_file():
            ckpt = Path(a.ckpt or QUICKSTART)
            what = f"trained checkpoint {ckpt}"
        else:
            ckpt = untrained_quickstart(tmp / "quickstart_untrained.ckpt")
            what = "UNTRAINED checkpoint with the quick-start settings (speed only; labels meaningless)"
        try:
            pred = Predictor(ckpt)
        except CheckpointError as e:
            print(f"bench_label: error: {e}", file=sys.stderr)
            return 2
        ident = pred.backbone.identity()
        load0 = os.getloadavg()[0]
        print(f"checkpoint: {what}\nbackbone: {ident['backbone']} {ident['preprocess']['size']} px, runtime "
              f"{runtime_of(pred.backbone)}; sampling {pred.fps:g} fps, window {pred.window}; "
              f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}\n"
              f"data: {len(videos)} videos x {a.seconds:.0f} s, 640x480 30 fps mp4v ({a.data})", flush=True)
        pred.backbone.embed(np.zeros((8, 480, 640, 3), np.uint8))  # warm-up
        rows = []
        nv = videos[:max(1, a.naive_videos)]
        s, w, f = naive(pred, nv)
        rows.append(("naive (every frame, batch 1, LSTM per frame)", len(nv), s, w, f, 0))
        for workers in [int(x) for x in a.workers.split(",")]:
            s, w, f, e = batched(pred, videos, workers, tmp / f"labels_w{workers}.csv")
            rows.append((f"batched (workers={workers})", len(videos), s, w, f, e))
        load1 = os.getloadavg()[0]
        naive_rate = rows[0][2] / rows[0][3]
        print(f"\n{'design':<46} {'videos':>6} {'video s':>8} {'wall s':>7} {'x real time':>11} {'frames/s':>8} "
              f"{'vs naive':>8}")
        for name, n, s, w, f, e in rows:
            print(f"{name:<46} {n:>6} {s:>8.1f} {w:>7.1f} {s / w:>11.1f} {f / w:>8.0f} {s / w / naive_rate:>7.1f}x"
                  + (f"  ({e} errors!)" if e else ""))
        # The batched design's ceiling: all cores busy with the work that no design can skip.
        vs_s, dec_s, emb_s = stages(pred, nv[0])
        cores = os.cpu_count() or 1
        bound = cores * vs_s / (dec_s + emb_s)
        print(f"\nper video second on one core ({nv[0].name}): decoding {dec_s / vs_s * 1e3:.1f} ms (every frame grabbed, "
              f"{pred.fps:g} fps converted and resized), backbone {emb_s / vs_s * 1e3:.1f} ms; so any design that decodes "
              f"every frame and embeds every sampled frame tops out near {bound:.0f}x real time on {cores} cores "
              f"= {bound / naive_rate:.1f}x the naive design")
        best = max(rows[1:], key=lambda r: r[2] / r[3])
        rt, vs = best[2] / best[3], best[2] / best[3] / naive_rate
        print(f"\nbest: {best[0]}: {rt:.1f}x real time (target >= 30x: {'met' if rt >= 30 else 'NOT met'}), "
                  f"{vs:.1f}x the naive design, {rt / bound:.0%} of the decode+backbone ceiling "
                  f"(target >= 90%: {'met' if rt >= 0.9 * bound else 'NOT met'})")
        print(f"load average (1 min) before/after: {load0:.2f} / {load1:.2f} on {os.cpu_count()} cores"
              + ("  - other processes were running; figures are low" if max(load0, load1) > 0.5 * (os.cpu_count() or 1)
                 else ""))
        return 0

    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the untrained checkpoint and label files are scratch

if __name__ == "__main__":
    sys.exit(main())
