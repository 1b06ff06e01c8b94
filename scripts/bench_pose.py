"""The pose network's cost per person crop in each runtime, and how far apart their pose rows are.

    python scripts/bench_pose.py                      # people in rendered 640x480 frames
    python scripts/bench_pose.py --video clip.mp4     # people in a real clip instead

The crops are the person detector's most confident box per frame, cut as the person features cut them. Prints, per
runtime (litert, openvino) and thread count, the milliseconds one crop's pose row takes (every look the row needs:
a wide crop is also read turned, and a tilted or off-centre pose gets a second look), read all together as feature
extraction reads a chunk of crops (OpenVINO keeps several looks in flight on streams of one thread each) and one at
a time as live mode reads one person's crop; then the largest difference between the runtimes' rows over the same
crops.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench_detector import each_runtime, frames_of


def crops_of(frames: list[np.ndarray]) -> list[np.ndarray]:
    from action_rec.features.detector import PersonDetector

    crops = []
    for frame, boxes in zip(frames, PersonDetector().detect(frames)):
        if len(boxes):
            x1, y1, x2, y2 = boxes.xyxy[int(np.argmax(boxes.conf))][:4]
            mx, my = 0.1 * (x2 - x1), 0.1 * (y2 - y1)  # person.box_row's margin
            crops.append(np.ascontiguousarray(frame[int(max(0, y1 - my)):int(y2 + my + 1),
                                                    int(max(0, x1 - mx)):int(x2 + mx + 1)]))
    return crops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", help="a clip to take frames from (default: rendered frames)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args()
    from action_rec.backbones import pose
    from action_rec.backbones.registry import build_backbone

    crops = crops_of(frames_of(a.video, a.frames))
    if not crops:
        raise SystemExit("the detector found nobody in these frames")
    runtimes = ["litert"] + (["openvino"] if pose.openvino_available() else [])
    rows = {}
    print(f"{len(crops)} person crops (median {int(np.median([c.shape[1] for c in crops]))}x"
          f"{int(np.median([c.shape[0] for c in crops]))} px); CPU threads available: {os.cpu_count()}")
    for rt, _, row in each_runtime(runtimes, a.threads):
        os.environ[pose.RUNTIME_ENV] = rt
        bb = build_backbone("mediapipe_pose")
        bb.embed(crops[:2])  # load and warm up
        start = time.perf_counter()
        rows[rt] = bb.embed(crops)
        together = (time.perf_counter() - start) / len(crops) * 1000
        start = time.perf_counter()
        alone = np.concatenate([bb.embed([c]) for c in crops])
        ms = (time.perf_counter() - start) / len(crops) * 1000
        print(f"{row}: {together:6.1f} ms a crop read together, {ms:6.1f} one at a time "
              f"({int((rows[rt][:, 0] >= 0.5).sum())} poses; rows apart by {np.abs(alone - rows[rt]).max():.1e})")
    if len(rows) == 2:
        d = np.abs(rows["litert"] - rows["openvino"])
        print(f"openvino vs litert: largest row difference {d.max():.5f}, rows differing by more than 0.01: "
              f"{int((d.max(1) > 0.01).sum())} of {len(d)}")


if __name__ == "__main__":
    main()
