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


class FallAlert:
    """The k-on / m-off hysteresis, one window (or live update) at a time.

    `update(p)` returns "start" on the update that confirms an event (the k-th in a row above the
    threshold), "end" on the m-th in a row below it, else None: an alert fires once per event. `event`
    holds the current/last event as (first_window, last_window) indices; the end is None while open.
    `fall_events` runs this same machine over a whole array, so batch and live cannot disagree.
    """

    def __init__(self, rule: FallRule, k: int | None = None):
        self.rule = rule
        self.k = max(1, rule.k if k is None else k)
        self.reset()

    def reset(self) -> None:
        self.index, self.above, self.below = -1, 0, 0
        self.event: tuple[int, int | None] | None = None

    @property
    def active(self) -> bool:
        return self.event is not None and self.event[1] is None

    def update(self, p: float) -> str | None:
        self.index += 1
        if p > self.rule.threshold:
            self.above, self.below = self.above + 1, 0
            if not self.active and self.above >= self.k:
                self.event = (self.index - self.k + 1, None)
                return "start"
        else:
            self.above, self.below = 0, self.below + 1
            if self.active and self.below >= self.rule.m:
                self.event = (self.event[0], self.index - self.below)
                return "end"
        return None

    def close(self) -> tuple[int, int] | None:
        """End of the sequence: close an open event (its last window above the threshold) and return it."""
        if not self.active:
            return None
        self.event = (self.event[0], self.index - self.below)
        return self.event


def fall_events(p_fall: np.ndarray, rule: FallRule) -> list[tuple[int, int]]:
    """Events as (first_window, last_window) index pairs, with k-on / m-off hysteresis.

    k is capped at the number of windows so a short clip can still raise an event."""
    alert = FallAlert(rule, k=min(rule.k, len(p_fall)))
    events = [alert.event for p in p_fall if alert.update(float(p)) == "end"]
    last = alert.close()
    return events + ([last] if last else [])


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
