"""From per-window class probabilities to a clip/video label and fall events.

One rule, shared by testing, batch labelling and live mode, so the three never disagree:
a video is the fall class when the fall probability stays above `threshold` for `k` consecutive
windows (falls are short events inside long videos, so a mean would drown them); otherwise it is the
class with the highest mean probability.

A clip shorter than k windows raises no fall event: an event needs k windows of evidence everywhere, as
live mode needs k updates before it alerts (a one-frame clip, padded to a window by repeating its frame,
shows no motion at all). Its label is then the class of highest mean probability, which may still be
the fall class; only the event (the alert, `fall_events`, `first_fall_s`) needs k windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..utils.errors import UsageError


@dataclass(frozen=True)
class FallRule:
    fall_class: str = "falling"
    threshold: float = 0.5
    k: int = 2  # consecutive windows above threshold to start an event
    m: int = 2  # consecutive windows below threshold to end it (hysteresis)

    def __post_init__(self):
        # k = 0 would raise an event with no window above the threshold; a threshold outside [0, 1] is
        # either always or never crossed by a probability.
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"fall_threshold must be between 0 and 1, got {self.threshold:g}")
        for name in ("k", "m"):
            v = getattr(self, name)
            if isinstance(v, (bool, str)) or not (isinstance(v, (int, float, np.integer)) and v >= 1 and v == int(v)):
                raise UsageError(f"fall_{name} must be an integer >= 1 (windows), got {v!r}")


class FallAlert:
    """The k-on / m-off hysteresis, one window (or live update) at a time.

    `update(p)` returns "start" on the update that confirms an event (the k-th in a row above the
    threshold), "end" on the m-th in a row below it, else None: an alert fires once per event. `event`
    holds the current/last event as (first_window, last_window) indices; the end is None while open.
    `fall_events` runs this same machine over a whole array, so batch and live cannot disagree.
    """

    def __init__(self, rule: FallRule, k: int | None = None):
        self.rule = rule
        self.k = rule.k if k is None else k
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
    """Events as (first_window, last_window) index pairs, with k-on / m-off hysteresis; fewer than k
    windows never make an event (see the module docstring)."""
    alert = FallAlert(rule)
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
