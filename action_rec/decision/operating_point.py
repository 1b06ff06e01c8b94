"""The fall rule's operating point (threshold, k), chosen on validation clips for a target false-alert rate.

A fall detector is judged by two numbers a user feels: how many falls it misses and how often it alarms when
nobody fell. Both depend on the rule in rule.py (fall probability above `threshold` for `k` consecutive
windows), so instead of a hand-set 0.5 / 2 the rule is swept over a grid on the validation split and the point
that catches the most validation falls while raising at most `target` false alerts per hour of non-fall video is
kept, in the checkpoint, for test, label, live and evaluate alike.

Ties are common on small validation sets (many points catch every fall with no alarm): among them the k closest to
the configured fall_k wins (the rule only moves where validation says it must; a smaller k breaks the tie), then
the middle of the tied thresholds, which leaves a margin on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .rule import FallRule, fall_events

# Steps of 0.01 up to 0.99: with label smoothing (0.05) a model's fall probability tops out near 0.96, and an
# ensemble's average lower still, so falls and non-falls part within a few hundredths near the top; a 0.05 grid
# (0.90, then 0.95) jumped over that band and left `make real`'s ensemble a 0.95 rule it never reached (README).
THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.30, 0.995, 0.01), 2))
KS = (1, 2, 3, 4)


@dataclass(frozen=True)
class Clip:
    """One scored clip: its window probabilities of the fall class (a tuple of them for several people: one per
    track, each track's events its own alerts), its length, whether it holds a fall."""
    p_fall: np.ndarray | tuple[np.ndarray, ...]
    duration_s: float
    is_fall: bool

    def events(self, rule: FallRule) -> int:
        seqs = self.p_fall if isinstance(self.p_fall, tuple) else (self.p_fall,)
        return sum(len(fall_events(p, rule)) for p in seqs)


@dataclass(frozen=True)
class Point:
    threshold: float
    k: int
    recall: float | None                 # detected fall clips / fall clips
    false_alerts_per_hour: float | None  # fall events on non-fall clips per hour of them
    false_alerts: int
    detected: int
    m: int | None = None                 # windows below the threshold that end an event (None: k)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def rule_at(point: dict, fall_class: str) -> FallRule:
    """The fall rule of a stored operating point (a checkpoint's `operating_point`); points stored before the
    alert's hold existed have no `m`: the event ends after k windows below the threshold."""
    k = int(point["k"])
    return FallRule(fall_class, float(point["threshold"]), k, int(point.get("m") or k))


def score(clips: Sequence[Clip], threshold: float, k: int, m: int | None = None) -> Point:
    """Recall and false alerts of the rule (threshold, k, m; m=None: k) over `clips`, counted like `evaluate` does.
    A longer m (the alert's hold) merges a person's events that are fewer than m windows apart: the same falls
    are found, with fewer alerts."""
    m = k if m is None else m
    rule = FallRule(threshold=threshold, k=k, m=m)
    falls = [c for c in clips if c.is_fall]
    others = [c for c in clips if not c.is_fall]
    detected = sum(c.events(rule) > 0 for c in falls)
    alerts = sum(c.events(rule) for c in others)
    hours = sum(c.duration_s for c in others) / 3600
    return Point(threshold, k, detected / len(falls) if falls else None,
                 alerts / hours if hours > 0 else None, alerts, detected, m)


def sweep(clips: Sequence[Clip], thresholds: Sequence[float] = THRESHOLDS, ks: Sequence[int] = KS,
          m: int | None = None) -> list[Point]:
    """Every (threshold, k) of the grid, each with the hold m (None: m = k)."""
    return [score(clips, t, k, m) for k in ks for t in thresholds]


def choose(points: Sequence[Point], target: float, prefer_k: int = 2) -> Point | None:
    """The point with the highest recall among those within `target` false alerts per hour (the fewest false
    alerts when none is), then the k closest to `prefer_k`, then the middle of the tied thresholds; None without
    fall clips."""
    scored = [p for p in points if p.recall is not None]
    if not scored:
        return None
    within = [p for p in scored if (p.false_alerts_per_hour or 0.0) <= target]
    pool = within or [min(scored, key=lambda p: (p.false_alerts_per_hour, -p.recall))]
    best = max(p.recall for p in pool)
    pool = [p for p in pool if p.recall == best]
    fewest = min(p.false_alerts_per_hour or 0.0 for p in pool)
    pool = [p for p in pool if (p.false_alerts_per_hour or 0.0) == fewest]
    k = min({p.k for p in pool}, key=lambda k: (abs(k - prefer_k), k))
    tied = sorted((p for p in pool if p.k == k), key=lambda p: p.threshold)
    return tied[len(tied) // 2]
