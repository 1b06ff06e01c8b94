"""From per-window class probabilities to a clip/video label and fall events.

One rule, shared by testing, batch labelling and live mode, so the three never disagree:
a video is the fall class when the fall probability stays above `threshold` for `k` consecutive
windows (falls are short events inside long videos, so a mean would drown them); otherwise it is the
class with the highest mean probability. Clips shorter than k windows need all their windows above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FallRule:
    fall_class: str = "falling"
    threshold: float = 0.5
    k: int = 2  # consecutive windows above threshold to start an event
    m: int = 2  # consecutive windows below threshold to end it (hysteresis)


def fall_events(p_fall: np.ndarray, rule: FallRule) -> list[tuple[int, int]]:
    """Events as (first_window, last_window) index pairs, with k-on / m-off hysteresis.

    k is capped at the number of windows so a short clip can still raise an event."""
    k = max(1, min(rule.k, len(p_fall)))
    events, start, above, below = [], None, 0, 0
    for i, p in enumerate(p_fall):
        if p > rule.threshold:
            above, below = above + 1, 0
            if start is None and above >= k:
                start = i - k + 1
        else:
            above, below = 0, below + 1
            if start is not None and below >= rule.m:
                events.append((start, i - below))
                start = None
    if start is not None:
        events.append((start, len(p_fall) - 1 - below))
    return events


def decide(window_probs: np.ndarray, class_names: list[str], rule: FallRule | None = None
           ) -> tuple[int, float, list[tuple[int, int]]]:
    """window_probs (W, C) -> (class index, confidence, fall events)."""
    probs = np.asarray(window_probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError(f"expected (windows, classes) probabilities, got shape {probs.shape}")
    mean = probs.mean(axis=0)
    rule = rule or FallRule()
    if rule.fall_class in class_names:
        f = class_names.index(rule.fall_class)
        events = fall_events(probs[:, f], rule)
        if events:
            s, e = events[0]
            return f, float(probs[s:e + 1, f].mean()), events
    return int(mean.argmax()), float(mean.max()), []
