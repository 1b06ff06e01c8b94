"""The person detector's cost per frame in each runtime, and how far apart their boxes are.

    python scripts/bench_detector.py                      # rendered 640x480 frames, detector at 256 px
    python scripts/bench_detector.py --video clip.mp4     # frames of a real clip instead

Prints, per runtime (torch, openvino) and thread count, the milliseconds one detect() call takes per frame (letterbox,
network, NMS; batches of --batch frames, as extraction hands them over), then the largest box and score difference
between the runtimes over the same frames.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def frames_of(video: str | None, n: int) -> list[np.ndarray]:
    if video:
        from action_rec.video import iter_sampled

        return [f for _, f in iter_sampled(video, 8.0)][:n]
    import cv2

    from action_rec import synth

    clip, _ = synth.render_clip("walking", seed=1)
    return [cv2.resize(np.ascontiguousarray(f), (640, 480)) for f in clip[:n]]


def each_runtime(runtimes: list[str], threads: str):
    """(runtime, thread count, row label) to time, with torch set to that many threads (the networks follow it)."""
    import torch

    for rt in runtimes:
        for th in [int(x) for x in threads.split(",")]:
            torch.set_num_threads(th)
            yield rt, th, f"{rt:>9}, {th} thread{'s' if th > 1 else ' '}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", help="a clip to take frames from (default: rendered frames)")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=256, help="detector input size (default: %(default)s)")
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args()
    from action_rec.features.detector import PersonDetector, openvino_available

    frames = frames_of(a.video, a.frames)
    runtimes = ["torch"] + (["openvino"] if openvino_available() else [])
    boxes = {}
    print(f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, detector at {a.size} px, "
          f"batches of {a.batch}; CPU threads available: {os.cpu_count()}")
    for rt, th, row in each_runtime(runtimes, a.threads):
        det = PersonDetector(image_size=a.size, runtime=rt, threads=th)
        det.detect(frames[:a.batch])  # load, convert or read the cached network, warm up
        start = time.perf_counter()
        out = []
        for i in range(0, len(frames), a.batch):
            out += det.detect(frames[i:i + a.batch])
        ms = (time.perf_counter() - start) / len(frames) * 1000
        boxes[rt] = out
        print(f"{row}: {ms:6.1f} ms a frame ({sum(len(b) for b in out)} boxes)")
    if len(boxes) == 2:
        px = sc = 0.0
        for t, o in zip(boxes["torch"], boxes["openvino"]):
            if len(t) != len(o):
                print("the runtimes found different numbers of boxes in a frame")
                continue
            if len(t):
                px = max(px, float(np.abs(t.xyxy - o.xyxy).max()))
                sc = max(sc, float(np.abs(t.conf - o.conf).max()))
        print(f"openvino vs torch: largest box difference {px:.4f} px, score difference {sc:.5f}")


if __name__ == "__main__":
    main()
