"""How firmly the held-out clips of `action-rec cv --ensemble` pin the fall alarm's operating point.

    python scripts/cv_alarm.py reports/real-cv/cv.json                 # targets 20, 60, 120 false alerts/h
    python scripts/cv_alarm.py reports/real-cv/cv.json --rule 0.75,2   # which clips raise that rule's false alerts

Reads cv.json's `held_out_tracks` (each held-out clip's per-track fall probabilities, scored by the fold models that
never saw its source) and prints:
- the per-track fall AUC: how well a clip's highest fall probability over its tracks ranks falls above the rest;
- for each target, the rule `decision/operating_point.choose` picks (what `--ensemble` stores) and its recall;
- how often each rule is picked over --boot bootstrap resamples of the clips (falls and non-falls resampled apart):
  a rule picked in most resamples is pinned by the data, a spread over many rules is not;
- with --rule T,K: the non-fall clips that raise that rule's false alerts.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from action_rec.decision.operating_point import Clip, choose, sweep
from action_rec.decision.rule import FallRule


def load(path: str | Path) -> tuple[list[dict], list[Clip]]:
    try:
        seqs = json.loads(Path(path).read_text()).get("held_out_tracks")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as e:
        raise SystemExit(f"{path}: not a readable cv.json ({type(e).__name__}: {e}); it is what "
                         "`action-rec cv ... --ensemble` writes (e.g. reports/real-cv/cv.json)") from None
    if not seqs:
        raise SystemExit(f"{path}: no held_out_tracks (run `action-rec cv ... --ensemble` with a person model)")
    clips = [Clip(tuple(np.asarray(p, float) for p in s["p_fall"]), float(s["duration_s"]), s["label"] == "falling")
             for s in seqs]
    return seqs, clips


def auc(clips: list[Clip]) -> float:
    top = [max((float(p.max()) for p in c.p_fall if len(p)), default=0.0) for c in clips]
    pos = np.array([t for t, c in zip(top, clips) if c.is_fall])
    neg = np.array([t for t, c in zip(top, clips) if not c.is_fall])
    return float(((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cv_json")
    ap.add_argument("--targets", default="20,60,120", help="false alerts per hour (default: %(default)s)")
    ap.add_argument("--boot", type=int, default=200, help="bootstrap resamples (default: %(default)s)")
    ap.add_argument("--prefer-k", type=int, default=2)
    ap.add_argument("--rule", help="THRESHOLD,K: list the non-fall clips with that rule's false alerts")
    ap.add_argument("--fall-m", type=int, help="the alert's hold in windows (model.fall_m; default: k)")
    a = ap.parse_args()
    seqs, clips = load(a.cv_json)
    falls = [c for c in clips if c.is_fall]
    others = [c for c in clips if not c.is_fall]
    hours = sum(c.duration_s for c in others) / 3600
    print(f"{len(clips)} held-out clips: {len(falls)} falls, {len(others)} others ({hours * 60:.1f} min; one false "
          f"alert = {1 / hours:.1f} /h)")
    print(f"per-track fall AUC {auc(clips):.3f}")
    points = sweep(clips, m=a.fall_m)
    by_rule = {(p.threshold, p.k): p for p in points}
    rng = np.random.default_rng(0)
    for target in (float(t) for t in a.targets.split(",")):
        c = choose(points, target, a.prefer_k)
        print(f"\ntarget <= {target:g} /h: chosen {c.threshold:.2f} / k {c.k}: recall {c.recall:.3f} at "
              f"{c.false_alerts_per_hour:.1f} /h")
        picks = collections.Counter()
        for _ in range(a.boot):
            sample = ([falls[i] for i in rng.integers(0, len(falls), len(falls))]
                      + [others[i] for i in rng.integers(0, len(others), len(others))])
            p = choose(sweep(sample, m=a.fall_m), target, a.prefer_k)
            picks[(p.threshold, p.k)] += 1
        for (t, k), n in picks.most_common(5):
            p = by_rule[(t, k)]
            print(f"  {t:.2f} / k {k}: picked in {n / a.boot:4.0%} of resamples; on all clips recall {p.recall:.3f} "
                  f"at {p.false_alerts_per_hour:.1f} /h")
    if a.rule:
        t, k = a.rule.split(",")
        rule = FallRule(threshold=float(t), k=int(k), m=a.fall_m or int(k))
        print(f"\nnon-fall clips with false alerts at {float(t):.2f} / k {int(k)}:")
        for s, c in zip(seqs, clips):
            if not c.is_fall and (n := c.events(rule)):
                print(f"  {n} alert(s) in {c.duration_s:.0f} s, {s['label']}: {s['path']}")


if __name__ == "__main__":
    main()
