#!/usr/bin/env python
"""Live mode on the real clips of ../shared/realvids: does the fall alert fire on the falling clips and
stay quiet on the walking (and `other`) ones?

Each clip goes through the real live loop (`action-rec live --headless --no-realtime`, in-process so the
checkpoint loads once); its alert events are checked against batch mode's fall events for the same file
(they must be identical: one shared rule, the same windows). Skips cleanly when the folder is absent.

--backbone-fps R (repeatable) also shows what a backbone slower than the sampling rate costs: live mode
fills the sample times it misses with the newest features, so a steady R frames/s backbone means exactly
that pattern of repeated features, applied here to each clip's cached features.

    python scripts/live_realvids.py --ckpt runs/quickstart/best.ckpt [--backbone-fps 5 --backbone-fps 3]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from action_rec.data.datasets import discover
from action_rec.decision import decide
from action_rec.features import cache as features
from action_rec.inference import Predictor
from action_rec.live import build_parser, run

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "realvids" / "MANIFEST.csv"


def with_repeats(feats: np.ndarray, fps: float, backbone_fps: float) -> np.ndarray:
    """The features a live LSTM sees when the backbone manages `backbone_fps` calls a second: each call
    takes the newest sample time and its features stand in for the sample times until the next call."""
    out, next_free, held = np.empty_like(feats), 0.0, None
    for i in range(len(feats)):
        if i >= next_free - 1e-9:
            held, next_free = feats[i], max(next_free, i) + fps / backbone_fps
        out[i] = held
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--manifest", default=str(DEFAULT))
    ap.add_argument("--labels", nargs="+", default=["falling", "walking", "other"])
    ap.add_argument("--cache-dir", default="cache/features")
    ap.add_argument("--backbone-fps", type=float, action="append", default=[])
    a = ap.parse_args()
    if not Path(a.manifest).is_file():
        print(f"skipped: {a.manifest} not found (the real clips live beside the project, not in it)")
        return 0
    pred = Predictor(a.ckpt)
    fall = pred.rule.fall_class
    items = [it for it in discover(a.manifest) if it.label in a.labels]
    cache, _ = features.extract([it.path for it in items], pred.backbone, pred.fps, a.cache_dir)
    alerts = defaultdict(lambda: defaultdict(int))
    total = defaultdict(int)
    mismatches = []
    print(f"{'label':8} {'clip':70} {'live alerts (start-end s)':28} first alert at")
    for it in items:
        out, log = io.StringIO(), io.StringIO()
        args = build_parser().parse_args(["--ckpt", a.ckpt, "--source", it.path, "--headless", "--no-realtime"])
        rc = run(args, out=out, log=log, predictor=pred)
        recs = [json.loads(line) for line in out.getvalue().splitlines()]
        if rc != 0:
            print(f"{it.label:8} {Path(it.path).name[:70]:70} failed: {log.getvalue().strip()[-200:]}")
            continue
        ends = [(r["fall_start_s"], r["fall_end_s"]) for r in recs if r.get("event") == "fall_end"]
        starts = [r["t"] for r in recs if r.get("event") == "fall_start"]
        batch = pred.predict_features(it.path, cache.load(it.path)[0]).events
        if not np.allclose(np.ravel(ends), np.ravel(batch), atol=1e-3) or len(ends) != len(batch):
            mismatches.append((it.path, ends, batch))
        total[it.label] += 1
        alerts[it.label]["live"] += bool(starts)
        shown = ", ".join(f"{s:.1f}-{e:.1f}" for s, e in ends) or "-"
        print(f"{it.label:8} {Path(it.path).name[:70]:70} {shown:28} {starts[0] if starts else '-'}")
        feats = cache.load(it.path)[0]
        for r in a.backbone_fps:
            probs, _ = pred.window_probs(with_repeats(feats, pred.fps, r))
            alerts[it.label][f"{r:g}/s"] += bool(decide(probs, pred.class_names, pred.rule)[2])
    print(f"\nclips with a fall alert ({fall} threshold {pred.rule.threshold}, k={pred.rule.k}, m={pred.rule.m}, "
          f"one update every {max(1, pred.window // 2)} samples at {pred.fps:g} samples/s):")
    cols = ["live"] + [f"{r:g}/s" for r in a.backbone_fps]
    heads = ["all samples fresh"] + [f"backbone {c} ({100 * min(1.0, float(c[:-2]) / pred.fps):.0f}% fresh)"
                                     for c in cols[1:]]
    print(f"  {'label':8} " + " ".join(f"{h:>28}" for h in heads))
    for label in a.labels:
        if total[label]:
            print(f"  {label:8} " + " ".join(f"{f'{alerts[label][c]}/{total[label]}':>28}" for c in cols))
    n = sum(total.values())
    print(f"live events identical to batch mode's on {n - len(mismatches)}/{n} clips")
    for m in mismatches:
        print("  MISMATCH", *m)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
