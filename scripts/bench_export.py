#!/usr/bin/env python
"""Export bundle vs checkpoint: parity on real (or synthetic) footage, bundle size, live latency, batch speed.

  parity   every video through Predictor (torch head, the checkpoint's backbone) and BundlePredictor (ONNX Runtime
           only): largest window-probability difference, and whether the label and fall events are the same.
  live     per-sampled-frame latency of stream.LiveModel.feed (one backbone call on a decoded frame + the LSTM
           lanes' step + the fall rule), p50/p95, over the videos' frames at the checkpoint's sampling rate.
  batch    labeling.label_videos over all the videos in one process (workers=0: a decoder thread), video seconds
           per wall-clock second ("x real time"), best of --repeats rounds.

The two paths take turns (video by video for live, run by run for batch), so both see the same load.

One process, the CPU's threads for the backbone (torch and ONNX Runtime alike). Other processes on the machine
distort the speed figures: the load average before and after is printed.

    python scripts/bench_export.py                            # runs/quickstart/best.ckpt on ../shared/realvids
    python scripts/bench_export.py --ckpt model.ckpt --videos data/synth/test --limit 20
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REALVIDS = Path(__file__).resolve().parents[2] / "shared" / "realvids"
SYNTH = Path("data/synth/test")


def videos_of(arg: str | None, limit: int | None) -> tuple[list[Path], str]:
    if arg:
        root = Path(arg)
        found = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"))
        what = str(root)
    elif (REALVIDS / "MANIFEST.csv").is_file():
        with open(REALVIDS / "MANIFEST.csv", newline="") as f:
            found = [REALVIDS / r["path"] for r in csv.DictReader(f)]
        what = f"{REALVIDS} (MANIFEST.csv)"
    elif SYNTH.is_dir():
        print(f"{REALVIDS}: not here; using the synthetic test clips", file=sys.stderr)
        found, what = sorted(SYNTH.rglob("*.mp4")), str(SYNTH)
    else:
        sys.exit(f"no videos: {REALVIDS} is absent and so is {SYNTH}; pass --videos")
    return found[:limit] if limit else found, what


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "?"
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = sorted(set(re.findall(r"\b(avx512_vnni|avx_vnni|avx2)\b", text)))
    return f"{model.group(1) if model else '?'} ({', '.join(flags) or 'no avx2'})"


def live_latency(preds: dict, videos: list[Path], frames_cap: int) -> dict[str, np.ndarray]:
    """Seconds per LiveModel.feed call (backbone + LSTM step + rule) on each video's sampled frames, for each
    predictor, the predictors taking turns video by video (so both see the same load from other processes)."""
    from action_rec.inference.stream import LiveModel
    from action_rec.video import iter_sampled

    models = {name: LiveModel(pred) for name, pred in preds.items()}
    for model in models.values():
        for _ in range(3):  # warm-up: first calls allocate and pick kernels
            model.backbone.embed([np.zeros((480, 640, 3), np.uint8)])
    out = {name: [] for name in preds}
    fps = next(iter(preds.values())).fps
    for v in videos:
        frames = [f for _, f in iter_sampled(v, fps)]
        for name, model in models.items():
            model.reset()
            for frame in frames:
                t0 = time.perf_counter()
                model.feed(frame, 1)
                out[name].append(time.perf_counter() - t0)
        if min(len(x) for x in out.values()) >= frames_cap:
            break
    for name, model in models.items():
        t = model.timings
        print(f"{name:<10}  live: backbone call p50 {np.median(t.backbone) * 1000:.1f} ms, LSTM step(s) p50 "
              f"{np.median(t.lstm) * 1000:.2f} ms")
    return {name: np.asarray(x) for name, x in out.items()}


def batch_speed(preds: dict, videos: list[Path], repeats: int) -> dict[str, tuple[float, float]]:
    """{name: (video seconds, best wall seconds)} of label_videos over the videos in one process; the predictors
    take turns, `repeats` rounds."""
    from action_rec.labeling import label_videos

    best = {name: (0.0, float("inf")) for name in preds}
    for _ in range(repeats):
        for name, pred in preds.items():
            t0 = time.perf_counter()
            results = list(label_videos([str(v) for v in videos], pred, workers=0))
            wall = time.perf_counter() - t0
            video_s = sum(r.duration_s or 0.0 for r in results if r.ok)
            best[name] = (video_s, min(best[name][1], wall))
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="runs/quickstart/best.ckpt")
    ap.add_argument("--bundle", help="an exported bundle of --ckpt (default: export one into a temporary folder)")
    ap.add_argument("--videos", help="a folder of videos (default: ../shared/realvids, else data/synth/test)")
    ap.add_argument("--limit", type=int, help="first N videos only")
    ap.add_argument("--live-frames", type=int, default=300, help="sampled frames timed per live run (%(default)s)")
    ap.add_argument("--repeats", type=int, default=1, help="batch runs per path, best taken (%(default)s)")
    ap.add_argument("--skip-speed", action="store_true", help="parity and size only")
    ap.add_argument("--skip-parity", action="store_true", help="size and speed only")
    a = ap.parse_args()

    # action_rec before torch: its __init__ sets OMP_WAIT_POLICY=PASSIVE, which only works before torch loads (with
    # torch first, its spinning OpenMP threads made the checkpoint's live latency 92 ms instead of 8 here)
    from action_rec.export import bundle_size, export_bundle
    from action_rec.export.runtime import BundlePredictor
    from action_rec.inference import Predictor

    import torch

    if not Path(a.ckpt).is_file():
        sys.exit(f"{a.ckpt}: no such checkpoint (run `make demo`, or pass --ckpt)")
    videos, what = videos_of(a.videos, a.limit)
    load0 = os.getloadavg()
    tmp = tempfile.TemporaryDirectory(prefix="bench_export-")
    bundle = Path(a.bundle) if a.bundle else Path(tmp.name) / "model"
    if not a.bundle:
        export_bundle(a.ckpt, bundle)
    ckpt, runtime = Predictor(a.ckpt), BundlePredictor(bundle)
    print(f"checkpoint {a.ckpt} ({Path(a.ckpt).stat().st_size / 1e6:.1f} MB), bundle {bundle_size(bundle) / 1e6:.1f} MB: "
          + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(bundle.iterdir())))
    print(f"videos: {len(videos)} from {what}")
    print(f"CPU: {cpu_flags()}, {os.cpu_count()} cores; torch threads {torch.get_num_threads()}, ONNX Runtime "
          f"threads {runtime.backbone.threads}; load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")

    worst, same_label, same_events, windows = 0.0, 0, 0, 0
    for v in [] if a.skip_parity else videos:
        p, q = ckpt.predict_video(v), runtime.predict_video(v)
        worst = max(worst, float(np.abs(p.window_probs - q.window_probs).max()))
        same_label += p.label == q.label
        same_events += p.events == q.events
        windows += len(p.window_probs)
    if not a.skip_parity:
        print(f"parity: {len(videos)} videos, {windows} windows: largest window-probability difference {worst:.2e}; "
              f"same label {same_label}/{len(videos)}, same fall events {same_events}/{len(videos)}")
    ok = a.skip_parity or (worst <= 1e-4 and same_label == same_events == len(videos))
    if a.skip_speed:
        return 0 if ok else 1

    preds = {"checkpoint": ckpt, "bundle": runtime}
    lat, speed = live_latency(preds, videos, a.live_frames), batch_speed(preds, videos, a.repeats)
    for name in preds:
        ms, (video_s, wall) = lat[name] * 1000, speed[name]
        print(f"{name:<10}  live: {len(ms)} frames, p50 {np.percentile(ms, 50):.1f} ms, p95 "
              f"{np.percentile(ms, 95):.1f} ms per sampled frame   batch: {video_s:.0f} s of video in {wall:.1f} s = "
              f"{video_s / wall:.1f}x real time")
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
