#!/usr/bin/env python
"""Benchmark several people in view: live and batch labelling of a person/both checkpoint with 1, 3, 6... people.

For each number of people N, a 640x480 30-fps video is generated: N synthetic people (action_rec.synth clips,
each cut around its person and tiled in a grid: 1 -> 1x1, 3 -> 2x2, 6 -> 3x2), the first one falling, the others
walking; each tile plays one clip after another, so people also leave and new ones arrive. Then:

- live: `action-rec live --headless --benchmark` on it, played in real time like a camera, in its own process
  -> display fps, model steps/s (sampled frames that got detector + tracker + backbone; the checkpoint's rate, e.g.
  8/s, when it keeps up), window updates/s (all people together), p95 latency (frame capture -> model output);
- batch: `label --workers W` on `--copies` copies of the video (one per worker, so every core works) -> x real time.

The people must be found by the checkpoint's detector, so the script prints how many people the tracker followed
per sampled frame (batch labelling's tracks) next to N. Other processes distort the figures: the load average is
printed before and after.

    python scripts/bench_tracks.py --ckpt runs/real-both/best.ckpt                # 1, 3, 6 people, 20 s each
    python scripts/bench_tracks.py --ckpt runs/real-both/best.ckpt --people 1,3,6 --seconds 10 --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

W, H, FPS = 640, 480, 30.0


def person_clip(action: str, seed: int, tile: tuple[int, int]) -> list[np.ndarray]:
    """One synth clip resampled to 30 fps, each frame cut around its person (a window of the tile's aspect that
    follows the body box, 1.25x its largest side) and resized to the tile (w, h): BGR frames."""
    from action_rec.synth import plan_clip, render_clip

    frames, fps = render_clip(action, seed)
    boxes = np.asarray(plan_clip(action, seed).camera["box"], np.float64)[:len(frames)]
    tw, th = tile
    side = 1.25 * max(float((boxes[:, 3] - boxes[:, 1]).max()), float((boxes[:, 2] - boxes[:, 0]).max()) * th / tw)
    ch, cw = side, side * tw / th
    out = []
    for i in range(int(len(frames) / fps * FPS)):
        k = min(int(i / FPS * fps), len(frames) - 1)
        f, b = frames[k], boxes[k]
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        m = np.float32([[tw / cw, 0, tw / 2 - cx * tw / cw], [0, th / ch, th / 2 - cy * th / ch]])
        out.append(cv2.warpAffine(f, m, (tw, th), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE))
    return out


def make_video(path: Path, people: int, seconds: float, seed: int = 0) -> Path:
    cols = math.ceil(math.sqrt(people))
    rows = math.ceil(people / cols)
    tw, th = W // cols, H // rows
    n = int(seconds * FPS)
    tiles = []
    for j in range(people):
        frames, s = [], 0
        while len(frames) < n:
            frames += person_clip("falling" if j == 0 else "walking", seed + 1000 * j + s, (tw, th))
            s += 1
        tiles.append(frames[:n])
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(n):
        f = np.full((H, W, 3), 114, np.uint8)
        for j in range(people):
            r, c = divmod(j, cols)
            f[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tiles[j][i]
        vw.write(f)
    vw.release()
    return path


def live(ckpt: str, video: Path, threads: int | None) -> dict | None:
    cmd = [sys.executable, "-m", "action_rec.cli", "live", "--ckpt", ckpt, "--source", str(video), "--headless",
           "--benchmark", "--realtime"]
    if threads:
        cmd += ["--threads", str(threads)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    rec = next((json.loads(x) for x in p.stdout.splitlines() if '"benchmark"' in x), None)
    if p.returncode != 0 or rec is None:
        print(f"live failed (exit {p.returncode})\n{p.stderr[-2000:]}", file=sys.stderr)
        return None
    rec["alerts"] = sorted({x["track"] for x in map(json.loads, p.stdout.splitlines())
                            if x.get("type") == "event" and x.get("event") == "fall_start"})
    return rec


def batch(ckpt: str, videos: list[Path], workers: int, out: Path) -> dict:
    from action_rec.labeling import LabelRun

    run = LabelRun([str(v) for v in videos], ckpt, out=str(out), overwrite=True, workers=workers)  # loads first
    t0 = time.perf_counter()
    results = list(run)
    wall = time.perf_counter() - t0
    video_s = sum(r.duration_s or 0.0 for r in results)
    r = results[0]
    seen = np.zeros(r.frames, int)  # people with a box at each sample of the first video
    for t in r.tracks or []:
        first = int(round(t.start_s * t.fps))
        seen[first:first + t.rows] += t.boxes.any(1)
    return {"video_s": video_s, "wall_s": wall, "x_real_time": video_s / wall, "errors": sum(not x.ok for x in results),
            "tracks": len(r.tracks or []), "people_per_sample": float(seen.mean()),
            "people_p10_p90": (float(np.percentile(seen, 10)), float(np.percentile(seen, 90))),
            "label": r.label, "fallers": sorted({t.id for t in r.tracks or [] if t.events})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    ap.add_argument("--ckpt", required=True, help="a checkpoint trained with features: person or both")
    ap.add_argument("--people", default="1,3,6", help="numbers of people in view, comma-separated")
    ap.add_argument("--seconds", type=float, default=20.0, help="video length (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="batch worker processes")
    ap.add_argument("--copies", type=int, help="videos labelled in the batch run (default: --workers)")
    ap.add_argument("--threads", type=int, help="torch threads for the live process")
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args()
    from action_rec.inference import Predictor
    from action_rec.inference.tracks import per_track_features

    pred = Predictor(a.ckpt)
    if per_track_features(pred) is None:
        print(f"bench_tracks: error: {a.ckpt} describes whole frames; give a person/both checkpoint", file=sys.stderr)
        return 2
    ident = pred.backbone.identity()
    del pred
    load0 = os.getloadavg()
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_tracks_"))
    try:
        for n in [int(x) for x in a.people.split(",")]:
            video = make_video(tmp / f"people{n}.mp4", n, a.seconds)
            print(f"{n} people: video made; live ...", file=sys.stderr, flush=True)
            lv = live(a.ckpt, video, a.threads)
            copies = [video] + [Path(shutil.copy(video, tmp / f"people{n}_{i}.mp4"))
                                for i in range(1, a.copies or a.workers)]
            print(f"{n} people: batch ...", file=sys.stderr, flush=True)
            bt = batch(a.ckpt, copies, a.workers, tmp / f"labels{n}.csv")
            rows.append({"people": n, "live": lv, "batch": bt})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1, default=float))

    def f(v, spec=".1f"):
        return "-" if v is None else format(v, spec)
    det = ident["detector"]
    print(f"\ncheckpoint {a.ckpt}: {ident['features']} features, {ident['backbone']} {ident['preprocess']['size']} "
          f"px {ident.get('precision', 'fp32')}, detector {det['image_size']} px {det['tracker']}; "
          f"{os.cpu_count()} cores; {a.seconds:g} s 640x480 30-fps video per row, live in real time, batch "
          f"--workers {a.workers} on {a.copies or a.workers} copies")
    head = ("people in view", "followed per sample (p10-p90)", "live display fps", "model steps/s",
            "window updates/s", "p50 / p95 latency ms", "live alerts (tracks)", "batch x real time",
            "batch fall tracks")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        lv, bt = r["live"] or {}, r["batch"]
        print("| " + " | ".join([
            str(r["people"]),
            f"{bt['people_per_sample']:.1f} ({bt['people_p10_p90'][0]:g}-{bt['people_p10_p90'][1]:g})",
            f(lv.get("display_fps")), f"{f(lv.get('backbone_fps'))} of {f(lv.get('sampling_fps'), 'g')}",
            f(lv.get("updates_per_s"), ".2f"),
            f"{f(lv.get('latency_p50_ms'), '.0f')} / {f(lv.get('latency_p95_ms'), '.0f')}",
            ",".join(map(str, lv.get("alerts", []))) or "none", f(bt["x_real_time"], ".2f"),
            ",".join(map(str, bt["fallers"])) or "none"]) + " |")
    print(f"load average (1/5/15 min) before {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, after "
          f"{load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
