#!/usr/bin/env python
"""Score a checkpoint on the real third-party clips in ../shared/realvids (development set only).

Prints accuracy, macro-F1 and the confusion matrix over the clips whose label the checkpoint knows
(walking/running/falling), and separately what it says about the `other` clips (none of the three:
a fall detector should not call them falling). Skips cleanly when the folder is absent.

    python scripts/eval_realvids.py --ckpt runs/quickstart/best.ckpt [--out realvids.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch
from torchmetrics.functional.classification import (multiclass_accuracy, multiclass_confusion_matrix,
                                                    multiclass_f1_score)

from action_rec import features
from action_rec.datasets import discover
from action_rec.inference import Predictor
from action_rec.training import format_results

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "realvids" / "MANIFEST.csv"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--manifest", default=str(DEFAULT))
    ap.add_argument("--cache-dir", default="cache/features")
    ap.add_argument("--out", help="write the metrics and per-clip predictions to this JSON file")
    a = ap.parse_args()
    if not Path(a.manifest).is_file():
        print(f"skipped: {a.manifest} not found (the real clips live beside the project, not in it)")
        return 0
    pred = Predictor(a.ckpt)
    items = discover(a.manifest)
    cache, report = features.extract([it.path for it in items], pred.backbone, pred.fps, a.cache_dir)
    if report.failed:
        print(report.summary())
    names = pred.class_names
    rows, known_t, known_p, other = [], [], [], Counter()
    for it in items:
        if not cache.has(it.path):
            continue
        r = pred.predict_features(it.path, cache.load(it.path)[0])
        rows.append({"path": it.path, "true": it.label, "predicted": r.label, "confidence": r.confidence,
                     "probs": r.probs, "fall_events_s": r.events})
        if it.label in names:
            known_t.append(names.index(it.label))
            known_p.append(names.index(r.label))
        else:
            other[r.label] += 1
    t, p = torch.tensor(known_t), torch.tensor(known_p)
    n = len(names)
    result = {"checkpoint": str(a.ckpt), "clips": len(known_t), "class_names": names,
              "accuracy": multiclass_accuracy(p, t, n, average="micro").item(),
              "macro_f1": multiclass_f1_score(p, t, n, average="macro").item(),
              "confusion_matrix": multiclass_confusion_matrix(p, t, n).tolist(),
              "other_clips": sum(other.values()), "other_predicted_as": dict(other),
              "unreadable": report.failed, "predictions": rows}
    print(f"realvids ({a.manifest}), clip level, classes known to the checkpoint:")
    print(format_results(result))
    print(f"'other' clips ({result['other_clips']}), predicted as: {dict(other) or '-'}")
    if a.out:
        features.atomic_write_text(Path(a.out), json.dumps(result, indent=2))
        print(f"written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
