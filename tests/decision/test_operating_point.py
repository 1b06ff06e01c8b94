"""Tests for action_rec.decision.operating_point: sweeping the fall rule on validation clips and choosing its point."""

import numpy as np
import pytest

from action_rec.decision.operating_point import THRESHOLDS, Clip, choose, score, sweep


def _clips():
    # Two falls (one clear, one faint: 0.57 for 2 windows), and 10 minutes of walking with a 2-window blip to 0.6
    # (no threshold separates it from the faint fall) and one lone window at 0.9.
    falls = [Clip(np.array([0.1, 0.2, 0.95, 0.97, 0.9, 0.3]), 4.0, True),
             Clip(np.array([0.1, 0.57, 0.57, 0.2]), 3.0, True)]
    walk = np.full(600, 0.05)
    walk[100:102] = 0.6
    walk[400] = 0.9
    return falls + [Clip(walk, 600.0, False)]


def test_score_counts_detected_falls_and_false_alerts_per_hour():
    p = score(_clips(), threshold=0.5, k=2)
    assert p.detected == 2 and p.recall == 1.0
    assert p.false_alerts == 1 and p.false_alerts_per_hour == pytest.approx(6.0)  # one alert in 10 minutes
    p = score(_clips(), threshold=0.5, k=1)
    assert p.false_alerts == 2 and p.false_alerts_per_hour == pytest.approx(12.0)
    p = score(_clips(), threshold=0.6, k=2)
    assert p.recall == 0.5 and p.false_alerts == 0


def test_choose_takes_the_most_recall_within_the_false_alert_target():
    pts = sweep(_clips())
    strict = choose(pts, target=0.0)  # no alert allowed: the faint fall must be given up
    assert strict.false_alerts == 0 and strict.recall == 0.5
    loose = choose(pts, target=10.0)  # one alert per 10 minutes is within 10/h: both falls
    assert loose.recall == 1.0 and loose.false_alerts_per_hour <= 10.0
    assert loose.k == 2 and loose.threshold < 0.57  # k=1 would add the lone 0.9 window's alert (12/h)
    # with every point tied (separable clips), the configured k wins; then the middle threshold
    easy = [Clip(np.array([0.1, 0.99, 0.99, 0.99, 0.99]), 3.0, True), Clip(np.full(20, 0.05), 600.0, False)]
    assert choose(sweep(easy), 10.0, prefer_k=2).k == 2 and choose(sweep(easy), 10.0, prefer_k=3).k == 3
    catch = [t for t in THRESHOLDS if t < 0.99]  # the thresholds the fall's 0.99 windows are above
    assert choose(sweep(easy), 10.0).threshold == catch[len(catch) // 2]
    # among tied points the middle threshold: a margin both ways
    tied = [p for p in pts if p.k == loose.k and p.recall == 1.0 and p.false_alerts == loose.false_alerts]
    assert loose.threshold == sorted(p.threshold for p in tied)[len(tied) // 2]


def test_choose_without_falls_or_within_target_points():
    no_falls = [c for c in _clips() if not c.is_fall]
    assert choose(sweep(no_falls), 20.0) is None
    always = [Clip(np.full(10, 0.99), 5.0, True), Clip(np.full(10, 0.99), 5.0, False)]
    p = choose(sweep(always), target=0.0)  # nothing meets the target: the fewest false alerts
    assert p is not None and p.false_alerts == min(x.false_alerts for x in sweep(always))


def test_a_longer_hold_merges_one_persons_alerts_and_finds_the_same_falls():
    # A person sitting near the threshold for a minute: the probability dips below it for 3 windows between bumps.
    sitting = np.full(60, 0.1)
    for start in (5, 14, 23, 32):
        sitting[start:start + 6] = 0.8
    clips = [Clip(sitting, 60.0, False), *[c for c in _clips() if c.is_fall]]
    plain, held = score(clips, 0.5, 2), score(clips, 0.5, 2, m=4)
    assert plain.m == 2 and held.m == 4
    assert plain.false_alerts == 4 and held.false_alerts == 1  # dips of 3 windows end an event only with m <= 3
    assert plain.detected == held.detected == 2  # an event starts where it did: the same falls are found
    pts = sweep(clips, m=4)
    assert {p.m for p in pts} == {4} and all(p.false_alerts <= q.false_alerts for p, q in zip(pts, sweep(clips)))
    assert choose(pts, target=60.0).as_dict()["m"] == 4  # the chosen point carries its hold


def test_the_grid_finds_a_point_in_the_band_where_label_smoothed_probabilities_part():
    # A label-smoothed model (or an ensemble's average) tops out near 0.93: its falls peak at 0.92-0.93 and a
    # walker's worst windows reach 0.915. Only a threshold in [0.915, 0.925) catches the falls without an alarm; a
    # 0.05 grid (0.90, then 0.95) had none there and chose a threshold that no window ever crossed.
    falls = [Clip(np.array([0.2, 0.6, 0.92, 0.93, 0.4]), 3.0, True),
             Clip(np.array([0.3, 0.925, 0.926, 0.5]), 3.0, True)]
    walk = np.full(300, 0.2)
    walk[50:53] = 0.915
    p = choose(sweep(falls + [Clip(walk, 300.0, False)]), target=0.0)
    assert p.recall == 1.0 and p.false_alerts == 0 and 0.915 <= p.threshold < 0.925
    assert max(THRESHOLDS) >= 0.99 and np.all(np.diff(THRESHOLDS) <= 0.0101)
