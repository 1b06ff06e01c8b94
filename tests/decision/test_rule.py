import numpy as np
import pytest

from action_rec.decision import FallAlert, FallRule, decide, fall_events

NAMES = ["falling", "running", "walking"]


def probs(fall):
    fall = np.asarray(fall, dtype=float)
    rest = (1 - fall) / 2
    return np.stack([fall, rest, rest], axis=1)


def test_events_need_k_consecutive_windows_and_end_after_m():
    rule = FallRule(threshold=0.5, k=2, m=2)
    p = np.array([0.1, 0.9, 0.2, 0.9, 0.9, 0.9, 0.3, 0.8, 0.2, 0.1, 0.1])
    # the single window at 1 is not an event; 3..5 is; the dip at 6 is bridged until two lows (8, 9)
    assert fall_events(p, rule) == [(3, 7)]


def test_event_open_at_end_of_video():
    assert fall_events(np.array([0.1, 0.7, 0.8]), FallRule(k=2, m=2)) == [(1, 2)]


def test_a_clip_shorter_than_k_windows_raises_no_event_but_keeps_its_label():
    """A one-frame clip is one window (its frame repeated): with k = 2 it cannot raise a fall event, as
    live mode would not alert on it either; its label is still the class of highest mean probability."""
    rule = FallRule(k=2)
    assert fall_events(np.array([0.9]), rule) == []
    assert fall_events(np.array([0.9, 0.9]), rule) == [(0, 1)]  # k windows: an event
    idx, conf, events = decide(probs([0.9]), NAMES, rule)
    assert NAMES[idx] == "falling" and events == [] and conf == pytest.approx(0.9)
    idx, _, events = decide(probs([0.3]), NAMES, rule)
    assert NAMES[idx] != "falling" and events == []
    # k = 1 asks for one window: then a one-window clip can raise one
    assert fall_events(np.array([0.9]), FallRule(k=1, m=1)) == [(0, 0)]


def test_batch_and_live_alert_agree_on_short_clips():
    from action_rec.decision import FallAlert

    rule = FallRule(k=3, m=2)
    for p in ([0.9], [0.9, 0.9], [0.9, 0.9, 0.9]):
        alert = FallAlert(rule)
        live_started = any(alert.update(v) == "start" for v in p)
        assert bool(fall_events(np.array(p), rule)) == live_started


@pytest.mark.parametrize("kw", [{"k": 0}, {"m": 0}, {"k": -1}, {"threshold": 2.0}, {"threshold": -1.0},
                                {"k": 1.5}])
def test_out_of_range_rules_are_refused(kw):
    from action_rec.utils.errors import UsageError

    with pytest.raises(UsageError, match="fall_(k|m|threshold) must be"):
        FallRule(**kw)


def test_fall_event_beats_higher_mean_of_another_class():
    # A long walking video with a short fall: the mean says walking, the event rule says falling.
    fall = [0.05] * 20 + [0.9, 0.95] + [0.05] * 20
    p = probs(fall)
    p[:, 2] += p[:, 1] - 0.01
    p[:, 1] = 0.01
    p /= p.sum(1, keepdims=True)
    assert p.mean(0).argmax() == 2
    idx, conf, events = decide(p, NAMES, FallRule(k=2))
    assert NAMES[idx] == "falling" and events == [(20, 21)] and conf > 0.85


def test_no_event_means_highest_mean_probability():
    p = np.array([[0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.1, 0.5, 0.4]])
    idx, conf, events = decide(p, NAMES)
    assert idx == 1 and events == [] and conf == pytest.approx(p[:, 1].mean())


def test_without_fall_class_rule_is_mean_argmax():
    p = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert decide(p, ["sit", "stand"])[0] == 0


def test_bad_shape_is_an_error():
    with pytest.raises(ValueError):
        decide(np.zeros((0, 3)), NAMES)


def _reference_fall_events(p_fall, rule):
    """The whole-array rule as first written (before FallAlert; since issue 14 without capping k at the
    number of windows), kept to prove the two agree."""
    k = rule.k
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


def test_fall_events_equals_reference_rule_on_random_sequences():
    rng = np.random.default_rng(0)
    nonempty = 0
    for trial in range(2000):
        rule = FallRule(threshold=float(rng.uniform(0.2, 0.8)), k=int(rng.integers(1, 5)),
                        m=int(rng.integers(1, 5)))
        # runs of highs and lows, so events of every length occur
        p = np.repeat(rng.uniform(0, 1, rng.integers(1, 12)), rng.integers(1, 5, 1))[:int(rng.integers(1, 40))]
        got = fall_events(p, rule)
        assert got == _reference_fall_events(p, rule), (trial, p, rule)
        nonempty += bool(got)
    assert nonempty > 300


def test_fall_alert_fires_once_per_event_with_hysteresis():
    alert = FallAlert(FallRule(threshold=0.5, k=3, m=2))
    p = [0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.9, 0.4, 0.9, 0.3, 0.1, 0.1, 0.9]
    out = [alert.update(v) for v in p]
    # two highs then a low: no alert; 3..5 confirms at 5; one low at 7 is bridged; lows at 9, 10 end it
    assert out == [None] * 5 + ["start"] + [None] * 4 + ["end", None, None]
    assert alert.event == (3, 8) and not alert.active
    alert.reset()
    assert [alert.update(v) for v in [0.9, 0.9, 0.9]] == [None, None, "start"]
    assert alert.active and alert.close() == (0, 2) and not alert.active
